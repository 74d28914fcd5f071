"""Knowledge distillation (Hinton et al.) in the style of the PyTorch tutorial
"Knowledge Distillation" and the widely copied ``loss_fn_kd``, in plain PyTorch.

A convolutional teacher and a small MLP student on synthetic 3-class images. The
distillation loss is ``nn.KLDivLoss(reduction='batchmean')`` of the student's
``F.log_softmax(outputs / T)`` against the teacher's ``F.softmax(teacher_outputs / T)``,
scaled by ``T * T`` and mixed with the hard-label cross entropy; a second variant uses
``F.kl_div(..., log_target=True)``, and a feature ("hint") loss matches the student's
hidden layer to the teacher's through a regressor with ``nn.CosineEmbeddingLoss``. The
teacher runs under ``torch.no_grad()`` in eval mode; evaluation computes accuracy and
the teacher / student agreement.

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset


class Teacher(nn.Module):
    def __init__(self, num_classes=3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d((2, 2)),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, num_classes)
        )

    def forward(self, x):
        x = self.features(x)
        return self.classifier(x)

    def hidden(self, x):
        return self.features(x).flatten(1)


class Student(nn.Module):
    def __init__(self, num_classes=3, hidden=16):
        super().__init__()
        self.fc1 = nn.Linear(64, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)
        self.regressor = nn.Linear(hidden, 64)

    def forward(self, x, return_hidden=False):
        h = F.relu(self.fc1(torch.flatten(x, 1)))
        out = self.fc2(h)
        if return_hidden:
            return out, self.regressor(h)
        return out


def synthetic_data(n, seed=0):
    """8x8 images whose class is the orientation of a bar (horizontal / vertical / diagonal)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(0, 0.3, (n, 1, 8, 8)).astype(np.float32)
    for i, c in enumerate(y):
        k = rng.integers(2, 6)
        if c == 0:
            x[i, 0, k, :] += 1.0
        elif c == 1:
            x[i, 0, :, k] += 1.0
        else:
            x[i, 0, np.arange(8), np.arange(8)] += 1.0
    return torch.from_numpy(x), torch.from_numpy(y)


def loss_fn_kd(outputs, labels, teacher_outputs, alpha=0.9, T=4.0):
    KD_loss = nn.KLDivLoss(reduction="batchmean")(
        F.log_softmax(outputs / T, dim=1), F.softmax(teacher_outputs / T, dim=1)
    ) * (alpha * T * T) + F.cross_entropy(outputs, labels) * (1.0 - alpha)
    return KD_loss


def loss_fn_kd_log_target(outputs, labels, teacher_outputs, alpha=0.5, T=2.0):
    soft = F.kl_div(
        F.log_softmax(outputs / T, dim=-1),
        F.log_softmax(teacher_outputs / T, dim=-1),
        reduction="batchmean",
        log_target=True,
    )
    return alpha * soft * T**2 + (1 - alpha) * nn.CrossEntropyLoss()(outputs, labels)


def hint_loss(student, teacher, inputs):
    with torch.no_grad():
        target_hidden = teacher.hidden(inputs)
    logits, regressed = student(inputs, return_hidden=True)
    cosine_loss = nn.CosineEmbeddingLoss()
    return cosine_loss(regressed, target_hidden, target=torch.ones(inputs.size(0))), logits


def distill_step_loss(student, teacher, inputs, labels, T=4.0, alpha=0.9, beta=0.25):
    with torch.no_grad():
        teacher_logits = teacher(inputs)
    h_loss, student_logits = hint_loss(student, teacher, inputs)
    return loss_fn_kd(student_logits, labels, teacher_logits, alpha, T) + beta * h_loss


def train_knowledge_distillation(teacher, student, train_loader, epochs, learning_rate, T,
                                 soft_target_loss_weight):  # fmt: skip
    optimizer = optim.Adam(student.parameters(), lr=learning_rate)
    teacher.eval()
    student.train()
    for epoch in range(epochs):
        running_loss = 0.0
        for inputs, labels in train_loader:
            optimizer.zero_grad()
            loss = distill_step_loss(student, teacher, inputs, labels, T, soft_target_loss_weight)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        print(f"Epoch {epoch + 1}/{epochs}, Loss: {running_loss / len(train_loader)}")


def evaluate(model, test_loader):
    model.eval()
    correct = 0
    total = 0
    with torch.no_grad():
        for inputs, labels in test_loader:
            outputs = model(inputs)
            _, predicted = torch.max(outputs.data, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
    return 100 * correct / total


def agreement(teacher, student, test_loader, T=4.0):
    """The fraction of test inputs on which student and teacher pick the same class, and
    the mean per-sample KL(teacher || student) at temperature T."""
    teacher.eval()
    student.eval()
    same, kl, n = 0, 0.0, 0
    with torch.no_grad():
        for inputs, _ in test_loader:
            t, s = teacher(inputs), student(inputs)
            same += (t.argmax(1) == s.argmax(1)).sum().item()
            kl += F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="sum").item()
            n += inputs.size(0)
    return same / n, kl / n


def make_loaders(batch_size=16):
    train = DataLoader(TensorDataset(*synthetic_data(48)), batch_size=batch_size, shuffle=True)
    test = DataLoader(TensorDataset(*synthetic_data(32, seed=1)), batch_size=batch_size)
    return train, test


def main(epochs=1):
    torch.manual_seed(42)
    train_loader, test_loader = make_loaders()
    teacher, student = Teacher(), Student()
    train_knowledge_distillation(teacher, student, train_loader, epochs, 1e-3, 4.0, 0.9)
    return evaluate(student, test_loader), agreement(teacher, student, test_loader)


if __name__ == "__main__":
    print(main())
