"""A fast neural style transfer network in the style of pytorch/examples'
fast_neural_style (an image transformation net trained against a fixed loss network
through gram matrices), in plain PyTorch. Small widths so it runs on a CPU.

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

import torch
import torch.nn.functional as F
from torch import nn


class ConvLayer(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride):
        super().__init__()
        reflection_padding = kernel_size // 2
        self.reflection_pad = nn.ReflectionPad2d(reflection_padding)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x):
        out = self.reflection_pad(x)
        return self.conv2d(out)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with instance normalisation and an identity shortcut."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x):
        residual = x
        out = self.relu(self.in1(self.conv1(x)))
        out = self.in2(self.conv2(out))
        return out + residual


class UpsampleConvLayer(nn.Module):
    """Nearest upsampling followed by a convolution (instead of a transposed conv)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, upsample=None):
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x):
        x_in = x
        if self.upsample:
            x_in = F.interpolate(x_in, mode="nearest", scale_factor=self.upsample)
        out = self.reflection_pad(x_in)
        return self.conv2d(out)


class TransformerNet(nn.Module):
    def __init__(self, width=8, n_residual=2):
        super().__init__()
        w = width
        # initial convolution layers
        self.conv1 = ConvLayer(3, w, kernel_size=9, stride=1)
        self.in1 = nn.InstanceNorm2d(w, affine=True)
        self.conv2 = ConvLayer(w, 2 * w, kernel_size=3, stride=2)
        self.in2 = nn.InstanceNorm2d(2 * w, affine=True)
        self.conv3 = ConvLayer(2 * w, 4 * w, kernel_size=3, stride=2)
        self.in3 = nn.InstanceNorm2d(4 * w, affine=True)
        # residual layers
        self.res = nn.Sequential(*[ResidualBlock(4 * w) for _ in range(n_residual)])
        # upsampling layers
        self.deconv1 = UpsampleConvLayer(4 * w, 2 * w, kernel_size=3, stride=1, upsample=2)
        self.in4 = nn.InstanceNorm2d(2 * w, affine=True)
        self.deconv2 = UpsampleConvLayer(2 * w, w, kernel_size=3, stride=1, upsample=2)
        self.in5 = nn.InstanceNorm2d(w, affine=True)
        self.deconv3 = ConvLayer(w, 3, kernel_size=9, stride=1)
        self.relu = nn.ReLU()

    def forward(self, X):
        y = self.relu(self.in1(self.conv1(X)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res(y)
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        y = self.deconv3(y)
        return y


class LossNet(nn.Module):
    """A small stand-in for the VGG feature extractor: returns the activations of each
    stage (the 'relu1_2', 'relu2_2', ... outputs of the real program)."""

    def __init__(self, width=8):
        super().__init__()
        self.slice1 = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(inplace=True))
        self.slice2 = nn.Sequential(
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        for param in self.parameters():
            param.requires_grad = False

    def forward(self, X):
        h1 = self.slice1(X)
        h2 = self.slice2(h1)
        return [h1, h2]


def gram_matrix(y):
    (b, ch, h, w) = y.size()
    features = y.view(b, ch, w * h)
    features_t = features.transpose(1, 2)
    gram = features.bmm(features_t) / (ch * h * w)
    return gram


def normalize_batch(batch):
    # normalize using imagenet mean and std
    mean = batch.new_tensor([0.485, 0.456, 0.406]).view(-1, 1, 1)
    std = batch.new_tensor([0.229, 0.224, 0.225]).view(-1, 1, 1)
    batch = batch.div_(255.0)
    return (batch - mean) / std


def style_grams(loss_net, style):
    features_style = loss_net(normalize_batch(style))
    return [gram_matrix(y) for y in features_style]


def total_loss(
    transformer, loss_net, mse_loss, x, gram_style, content_weight=1e5, style_weight=1e10
):
    """One training step's loss, as in train(): content loss on the second stage plus
    style loss over every stage's gram matrix."""
    n_batch = len(x)
    y = transformer(x)
    y = normalize_batch(y)
    x = normalize_batch(x.clone())
    features_y = loss_net(y)
    features_x = loss_net(x)
    content_loss = content_weight * mse_loss(features_y[1], features_x[1])
    style_loss = 0.0
    for ft_y, gm_s in zip(features_y, gram_style):
        gm_y = gram_matrix(ft_y)
        style_loss += mse_loss(gm_y, gm_s[:n_batch, :, :])
    style_loss *= style_weight
    return content_loss + style_loss, (content_loss, style_loss)


def stylize(model, content_image):
    """Inference as in stylize(): one image in [0, 255], output clamped to [0, 255]."""
    model.eval()
    with torch.no_grad():
        output = model(content_image.unsqueeze(0)).cpu()
    return output[0].clone().clamp(0, 255)
