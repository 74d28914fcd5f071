"""A small U-Net for segmentation in plain PyTorch, in the style of the popular public
implementations (double convolutions, max-pool downs, bilinear or transposed-conv ups
with padding to match odd sizes, skip connections by concatenation).

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class DoubleConv(nn.Module):
    """Two 3x3 convolutions, each followed by batch norm and a ReLU."""

    def __init__(self, in_channels, out_channels, mid_channels=None):
        super().__init__()
        if not mid_channels:
            mid_channels = out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    """Halve the resolution with a max-pool, then a DoubleConv (and channel dropout)."""

    def __init__(self, in_channels, out_channels, dropout=0.0):
        super().__init__()
        self.maxpool_conv = nn.Sequential(
            nn.MaxPool2d(2), DoubleConv(in_channels, out_channels), nn.Dropout2d(dropout)
        )

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    """Double the resolution, concatenate the skip connection, then a DoubleConv."""

    def __init__(self, in_channels, out_channels, bilinear=True):
        super().__init__()
        # bilinear upsampling keeps the channels; the DoubleConv halves them
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(in_channels, out_channels, in_channels // 2)
        else:
            self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        # the skip connection may be a pixel larger (odd input sizes): pad x1 to it
        diffY = x2.size()[2] - x1.size()[2]
        diffX = x2.size()[3] - x1.size()[3]
        x1 = F.pad(x1, [diffX // 2, diffX - diffX // 2, diffY // 2, diffY - diffY // 2])
        x = torch.cat([x2, x1], dim=1)
        return self.conv(x)


class OutConv(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x):
        return self.conv(x)


class UNet(nn.Module):
    def __init__(self, n_channels, n_classes, bilinear=False, width=8, dropout=0.1):
        super().__init__()
        self.n_channels = n_channels
        self.n_classes = n_classes
        self.bilinear = bilinear
        w = width
        factor = 2 if bilinear else 1
        self.inc = DoubleConv(n_channels, w)
        self.down1 = Down(w, 2 * w, dropout)
        self.down2 = Down(2 * w, 4 * w // factor, dropout)
        self.up1 = Up(4 * w, 2 * w // factor, bilinear)
        self.up2 = Up(2 * w, w, bilinear)
        self.outc = OutConv(w, n_classes)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x = self.up1(x3, x2)
        x = self.up2(x, x1)
        logits = self.outc(x)
        return logits


def soft_dice(probs, onehot, eps=1e-6):
    """Mean over classes (and images) of the soft Dice score 2|A.B| / (|A| + |B|)."""
    dims = (2, 3)
    overlap = (probs * onehot).sum(dim=dims)
    total = probs.sum(dim=dims) + onehot.sum(dim=dims)
    # an empty class in both prediction and mask counts as a perfect match
    total = torch.where(total == 0, 2 * overlap, total)
    return ((2 * overlap + eps) / (total + eps)).mean()


def one_hot_masks(masks, n_classes):
    return F.one_hot(masks, n_classes).permute(0, 3, 1, 2).float()


def segmentation_loss(model, criterion, images, true_masks):
    """The training loop's loss: cross entropy plus the soft multiclass Dice loss."""
    masks_pred = model(images)
    loss = criterion(masks_pred, true_masks)
    loss += 1 - soft_dice(F.softmax(masks_pred, dim=1), one_hot_masks(true_masks, model.n_classes))
    return loss, masks_pred


@torch.inference_mode()
def evaluate(net, images, mask_true):
    """The validation score: Dice of the one-hot argmax prediction, background left out."""
    net.eval()
    pred = one_hot_masks(net(images).argmax(dim=1), net.n_classes)
    true = one_hot_masks(mask_true, net.n_classes)
    return soft_dice(pred[:, 1:], true[:, 1:])
