"""Domain-adversarial training (DANN) in plain PyTorch, in the style of common
tutorials: a gradient-reversal layer and a straight-through binariser written as
``torch.autograd.Function`` subclasses, inputs wrapped in the old ``Variable`` API.

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import Function, Variable


class GradReverse(Function):
    """Identity on the way forward; multiplies the gradient by -alpha on the way back."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.alpha = alpha
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        output = grad_output.neg() * ctx.alpha
        return output, None


def grad_reverse(x, alpha=1.0):
    return GradReverse.apply(x, alpha)


class BinarizeSTE(Function):
    """sign(x) forward; the straight-through gradient, zeroed where |x| > 1."""

    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return torch.sign(input)

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        grad_input = grad_output.clone()
        grad_input[input.abs() > 1] = 0
        return grad_input


class ScaledSquare(Function):
    """x * y ** 2 with a hand-written backward for both inputs."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y * y

    @staticmethod
    def backward(ctx, grad_output):
        x, y = ctx.saved_tensors
        grad_x = grad_y = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_output * y * y
        if ctx.needs_input_grad[1]:
            grad_y = grad_output * 2 * x * y
        return grad_x, grad_y


class DANN(nn.Module):
    def __init__(self, in_features=8, hidden=16, n_classes=3, binary_features=False):
        super().__init__()
        self.feature = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(True),
            nn.Linear(hidden, hidden),
        )
        self.class_classifier = nn.Sequential(
            nn.ReLU(True),
            nn.Linear(hidden, n_classes),
            nn.LogSoftmax(dim=1),
        )
        self.domain_classifier = nn.Sequential(
            nn.Linear(hidden, hidden),
            nn.ReLU(True),
            nn.Linear(hidden, 2),
            nn.LogSoftmax(dim=1),
        )
        self.binary_features = binary_features

    def forward(self, input_data, alpha):
        feature = self.feature(input_data)
        if self.binary_features:
            feature = BinarizeSTE.apply(feature)
        class_output = self.class_classifier(feature)
        reverse_feature = GradReverse.apply(feature, alpha)
        domain_output = self.domain_classifier(reverse_feature)
        return class_output, domain_output


def dann_loss(model, s_img, s_label, t_img, alpha):
    s_img, s_label, t_img = Variable(s_img), Variable(s_label), Variable(t_img)
    class_output, domain_output = model(s_img, alpha)
    err_s_label = F.nll_loss(class_output, s_label)
    domain_label = torch.zeros(len(s_img)).long()
    err_s_domain = F.nll_loss(domain_output, domain_label)
    _, domain_output = model(t_img, alpha)
    domain_label = torch.ones(len(t_img)).long()
    err_t_domain = F.nll_loss(domain_output, domain_label)
    return err_s_label + err_s_domain + err_t_domain, class_output


def train_step(model, optimizer, s_img, s_label, t_img, alpha):
    model.zero_grad()
    err, _ = dann_loss(model, s_img, s_label, t_img, alpha)
    err.backward()
    optimizer.step()
    return err.item()


def main(steps=3, seed=0):
    torch.manual_seed(seed)
    model = DANN()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    s_img, t_img = torch.randn(8, 8), torch.randn(8, 8) + 1.0
    s_label = torch.randint(0, 3, (8,))
    for p in range(steps):
        alpha = 2.0 / (1.0 + torch.exp(torch.tensor(-10.0 * p / steps)).item()) - 1
        err = train_step(model, optimizer, s_img, s_label, t_img, alpha)
    return err


if __name__ == "__main__":
    print(main())
