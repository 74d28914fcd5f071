"""Metric learning in plain PyTorch, in the style of the public siamese-network examples:
one embedding CNN shared by two (or three) inputs, trained with a contrastive loss on
pairs or a triplet margin loss, and pairs scored by distance / cosine similarity.

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class EmbeddingNet(nn.Module):
    def __init__(self, embedding_dim=8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=3, padding=1),
            nn.BatchNorm2d(8),
            nn.PReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, kernel_size=3, padding=1),
            nn.BatchNorm2d(16),
            nn.PReLU(),
            nn.AdaptiveAvgPool2d((2, 2)),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 2 * 2, 32), nn.PReLU(), nn.Linear(32, embedding_dim)
        )

    def forward(self, x):
        return self.head(self.features(x))


class SiameseNet(nn.Module):
    def __init__(self, embedding_net):
        super().__init__()
        self.embedding_net = embedding_net

    def forward(self, x1, x2):
        return self.embedding_net(x1), self.embedding_net(x2)

    def get_embedding(self, x):
        return F.normalize(self.embedding_net(x), p=2, dim=1)


class TripletNet(nn.Module):
    def __init__(self, embedding_net):
        super().__init__()
        self.embedding_net = embedding_net

    def forward(self, anchor, positive, negative):
        return (
            self.embedding_net(anchor),
            self.embedding_net(positive),
            self.embedding_net(negative),
        )


class ContrastiveLoss(nn.Module):
    """label 1 for a similar pair, 0 for a dissimilar one: similar pairs are pulled
    together, dissimilar ones pushed at least ``margin`` apart."""

    def __init__(self, margin=2.0):
        super().__init__()
        self.margin = margin

    def forward(self, output1, output2, label):
        d = F.pairwise_distance(output1, output2, keepdim=True)
        similar = label * d.pow(2)
        dissimilar = (1 - label) * torch.clamp(self.margin - d, min=0.0).pow(2)
        return torch.mean(similar + dissimilar) / 2


def pair_scores(model, x1, x2):
    """Evaluation: the Euclidean distance and cosine similarity of each pair."""
    model.eval()
    with torch.no_grad():
        e1, e2 = model(x1, x2)
        distance = F.pairwise_distance(e1, e2)
        cosine = F.cosine_similarity(e1, e2, dim=1)
    return distance, cosine


def triplet_step_loss(model, criterion, anchor, positive, negative):
    a, p, n = model(anchor, positive, negative)
    return criterion(a, p, n), (a, p, n)
