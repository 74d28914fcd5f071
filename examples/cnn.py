"""Port of shared/torch_reference/cnn.py: SmallAlexNet, LeNet (two ways), AlexNet.

Lines changed from the torch original: the imports, ``torch.flatten`` /
``torch.manual_seed`` / ``torch.rand`` -> ``jaxmod.*`` (same signatures), and AlexNet's
forward compiled with ``jaxmod.jit`` in the demo. ``x.view(x.size()[0], -1)`` and
``nn.init.*`` are unchanged.
"""

from collections import OrderedDict

import jaxmod
from jaxmod import nn


class SmallAlexNet(nn.Module):
    """Five conv blocks and three dense layers for 3x32x32 inputs."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 6, 3, 1, 1), nn.MaxPool2d(2, 2))
        self.conv2 = nn.Sequential(nn.Conv2d(6, 16, 3, 1, 1), nn.MaxPool2d(2, 2))
        self.conv3 = nn.Sequential(nn.Conv2d(16, 32, 3, 1, 1), nn.MaxPool2d(2, 2))
        self.conv4 = nn.Sequential(nn.Conv2d(32, 64, 3, 1, 1), nn.MaxPool2d(2, 2))
        self.conv5 = nn.Sequential(nn.Conv2d(64, 128, 3, 1, 1), nn.MaxPool2d(2, 2))
        self.dense = nn.Sequential(nn.Linear(128, 120), nn.Linear(120, 84), nn.Linear(84, 10))

    def forward(self, x):
        for block in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            x = block(x)
        x = x.view(x.size()[0], -1)
        return self.dense(x)

    def initialize_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)


class LeNetSequential(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
        )  # fmt: skip
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, classes),
        )  # fmt: skip

    def forward(self, x):
        x = self.features(x)
        x = x.view(x.size()[0], -1)
        return self.classifier(x)


class LeNetSequentialOrderDict(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                {
                    "conv1": nn.Conv2d(3, 6, 5),
                    "relu1": nn.ReLU(inplace=True),
                    "pool1": nn.MaxPool2d(kernel_size=2, stride=2),
                    "conv2": nn.Conv2d(6, 16, 5),
                    "relu2": nn.ReLU(inplace=True),
                    "pool2": nn.MaxPool2d(kernel_size=2, stride=2),
                }
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                {
                    "fc1": nn.Linear(16 * 5 * 5, 120),
                    "relu3": nn.ReLU(),
                    "fc2": nn.Linear(120, 84),
                    "relu4": nn.ReLU(inplace=True),
                    "fc3": nn.Linear(84, classes),
                }
            )
        )

    def forward(self, x):
        x = self.features(x)
        x = x.view(x.size()[0], -1)
        return self.classifier(x)


class AlexNet(nn.Module):
    """The torchvision layout: features, adaptive pooling, classifier with dropout."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )  # fmt: skip
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )  # fmt: skip

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = jaxmod.flatten(x, 1)
        return self.classifier(x)


if __name__ == "__main__":
    jaxmod.manual_seed(0)
    net = SmallAlexNet()
    net.initialize_weights()
    print(net(jaxmod.rand(2, 3, 32, 32)).shape)
    for m in (LeNetSequential(10), LeNetSequentialOrderDict(10)):
        print(m, m(jaxmod.rand(4, 3, 32, 32)).shape)
    alex = AlexNet(num_classes=10).eval()
    print(alex, jaxmod.jit(lambda m, x: m(x))(alex, jaxmod.rand(1, 3, 224, 224)).shape)
