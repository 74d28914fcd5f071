"""A sub-pixel convolution super-resolution network (ESPCN) in plain PyTorch, in the
style of pytorch/examples' super_resolution: a few convolutions on the low-resolution
luminance channel, the last producing r*r channels that ``nn.PixelShuffle`` rearranges
into an r-times larger image.

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

import torch
import torch.nn as nn
import torch.nn.init as init


class ESPCN(nn.Module):
    def __init__(self, upscale_factor, channels=1, widths=(16, 16, 8)):
        super().__init__()
        layers = []
        in_ch = channels
        for i, w in enumerate(widths):
            k = 5 if i == 0 else 3
            layers += [nn.Conv2d(in_ch, w, kernel_size=k, padding=k // 2), nn.ReLU()]
            in_ch = w
        self.features = nn.Sequential(*layers)
        self.to_subpixels = nn.Conv2d(in_ch, channels * upscale_factor**2, 3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(upscale_factor)
        self.reset_parameters()

    def reset_parameters(self):
        # orthogonal weights scaled for the ReLUs that follow them; the output layer plain
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                init.orthogonal_(m.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.to_subpixels.weight)

    def forward(self, x):
        return self.pixel_shuffle(self.to_subpixels(self.features(x)))


def psnr(model, criterion, input, target):
    """The test loop's metric for one batch: 10 log10(1 / MSE), in dB."""
    with torch.no_grad():
        mse = criterion(model(input), target)
        return 10 * torch.log10(1 / mse).item()


def super_resolve(model, y):
    """Upscale one luminance image in [0, 1] and return it in [0, 255] as numpy."""
    model.eval()
    with torch.no_grad():
        out = model(y)
    img = out[0].detach().cpu().numpy() * 255.0
    return img.clip(0, 255)
