"""A spatial transformer network for digit classification in plain PyTorch, in the style
of the PyTorch spatial transformer tutorial: a localisation net predicts a 2x3 affine
matrix per image (initialised to the identity), the input is resampled through
``F.affine_grid`` / ``F.grid_sample``, then a small CNN classifies it. Sized for 16x16
inputs so it runs on a CPU.

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class STNClassifier(nn.Module):
    def __init__(self, num_classes=10, align_corners=False):
        super().__init__()
        self.align_corners = align_corners
        # the classifier that sees the transformed image
        self.conv1 = nn.Conv2d(1, 6, kernel_size=3)
        self.conv2 = nn.Conv2d(6, 12, kernel_size=3)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(12 * 2 * 2, 24)
        self.fc2 = nn.Linear(24, num_classes)

        # the localisation network
        self.localization = nn.Sequential(
            nn.Conv2d(1, 4, kernel_size=5),
            nn.MaxPool2d(2, stride=2),
            nn.ReLU(True),
            nn.Conv2d(4, 6, kernel_size=3),
            nn.MaxPool2d(2, stride=2),
            nn.ReLU(True),
        )
        # regresses the 3 x 2 affine matrix
        self.fc_loc = nn.Sequential(nn.Linear(6 * 2 * 2, 16), nn.ReLU(True), nn.Linear(16, 3 * 2))
        # start from the identity transformation
        self.fc_loc[2].weight.data.zero_()
        self.fc_loc[2].bias.data.copy_(torch.tensor([1, 0, 0, 0, 1, 0], dtype=torch.float))

    def stn(self, x):
        xs = self.localization(x)
        xs = xs.view(-1, 6 * 2 * 2)
        theta = self.fc_loc(xs)
        theta = theta.view(-1, 2, 3)
        grid = F.affine_grid(theta, x.size(), align_corners=self.align_corners)
        x = F.grid_sample(x, grid, align_corners=self.align_corners)
        return x

    def forward(self, x):
        x = self.stn(x)
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 12 * 2 * 2)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


def warp(images, theta, mode="bilinear", padding_mode="zeros", align_corners=False):
    """Resample ``images`` through the affine matrices ``theta`` (what visualize_stn()
    shows)."""
    grid = F.affine_grid(theta, images.size(), align_corners=align_corners)
    return F.grid_sample(
        images, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners
    )


def test(model, data, target):
    """The test loop for one batch: summed NLL loss and the number of correct guesses."""
    model.eval()
    with torch.no_grad():
        output = model(data)
        test_loss = F.nll_loss(output, target, reduction="sum").item()
        pred = output.max(1, keepdim=True)[1]
        correct = pred.eq(target.view_as(pred)).sum().item()
    return test_loss, correct
