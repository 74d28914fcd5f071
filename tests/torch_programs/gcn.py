"""A two-layer graph convolutional network (Kipf & Welling style), written in plain torch.

A synthetic citation-like graph: random features and edges, the symmetric normalised
adjacency ``D^-1/2 (A + I) D^-1/2`` built densely (``torch.eye``, ``adj.sum(1).pow(-0.5)``,
``torch.diag``) and as a sparse COO tensor for ``torch.sparse.mm``, train / val / test
splits taken by fancy indexing and an accuracy helper.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parameter import Parameter


class GraphConvolution(nn.Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(torch.FloatTensor(in_features, out_features))
        if bias:
            self.bias = Parameter(torch.FloatTensor(out_features))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.weight.size(1))
        self.weight.data.uniform_(-stdv, stdv)
        if self.bias is not None:
            self.bias.data.uniform_(-stdv, stdv)

    def forward(self, input, adj):
        support = torch.mm(input, self.weight)
        if adj.is_sparse:
            output = torch.sparse.mm(adj, support)
        else:
            output = adj @ support
        if self.bias is not None:
            return output + self.bias
        return output

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}"


class GCN(nn.Module):
    def __init__(self, nfeat, nhid, nclass, dropout):
        super().__init__()
        self.gc1 = GraphConvolution(nfeat, nhid)
        self.gc2 = GraphConvolution(nhid, nclass)
        self.dropout = dropout

    def forward(self, x, adj):
        x = F.relu(self.gc1(x, adj))
        x = F.dropout(x, self.dropout, training=self.training)
        x = self.gc2(x, adj)
        return F.log_softmax(x, dim=1)


def normalize_adj(adj):
    """D^-1/2 (A + I) D^-1/2 of a dense 0/1 adjacency."""
    adj = adj + torch.eye(adj.shape[0])
    rowsum = adj.sum(1)
    d_inv_sqrt = rowsum.pow(-0.5)
    d_inv_sqrt[torch.isinf(d_inv_sqrt)] = 0.0
    d_mat_inv_sqrt = torch.diag(d_inv_sqrt)
    return d_mat_inv_sqrt @ adj @ d_mat_inv_sqrt


def to_sparse(adj):
    indices = adj.nonzero().t()
    values = adj[indices[0], indices[1]]
    return torch.sparse_coo_tensor(indices, values, adj.shape)


def synthetic_graph(n_nodes=30, n_feat=12, n_class=3, seed=0):
    """Features, labels (features carry a class signal), a symmetric random adjacency
    with edges mostly inside a class, and index splits."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n_nodes) % n_class
    features = torch.randn(n_nodes, n_feat, generator=g)
    features[torch.arange(n_nodes), labels] += 2.0
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    p = torch.where(same, torch.full((n_nodes, n_nodes), 0.3), torch.full((n_nodes, n_nodes), 0.02))
    edges = (torch.rand(n_nodes, n_nodes, generator=g) < p).float()
    edges = torch.triu(edges, diagonal=1)
    adj = edges + edges.t()
    features = features / features.sum(1, keepdim=True).abs().clamp(min=1e-6)
    idx_train = torch.LongTensor(range(0, n_nodes // 2))
    idx_val = torch.LongTensor(range(n_nodes // 2, 3 * n_nodes // 4))
    idx_test = torch.LongTensor(range(3 * n_nodes // 4, n_nodes))
    return features, adj, labels, idx_train, idx_val, idx_test


def accuracy(output, labels):
    preds = output.max(1)[1].type_as(labels)
    correct = preds.eq(labels).double()
    correct = correct.sum()
    return correct / len(labels)


def loss_train(model, features, adj, labels, idx_train):
    output = model(features, adj)
    return F.nll_loss(output[idx_train], labels[idx_train]), output


def test(model, features, adj, labels, idx_test):
    model.eval()
    output = model(features, adj)
    loss_test = F.nll_loss(output[idx_test], labels[idx_test])
    acc_test = accuracy(output[idx_test], labels[idx_test])
    return loss_test.item(), acc_test.item()
