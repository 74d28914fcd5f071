"""A bidirectional-LSTM sentence classifier over padded, packed variable-length batches,
in the style of the PyTorch sentiment-analysis tutorials (``pad_sequence`` in the
collate function, ``pack_padded_sequence(..., enforce_sorted=False)`` before the LSTM,
``pad_packed_sequence`` after it), in plain PyTorch, on a tiny built-in data set.

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
from torch.utils.data import DataLoader

PAD_IDX = 0
UNK_IDX = 1

DATA = [
    (1, "what a great and wonderful film"),
    (0, "boring"),
    (1, "i loved it"),
    (0, "the plot was dull and the acting was bad"),
    (1, "great fun"),
    (0, "not good at all"),
    (1, "a wonderful cast and a great story"),
    (0, "bad"),
]


def build_vocab(data):
    vocab = {"<pad>": PAD_IDX, "<unk>": UNK_IDX}
    for _, text in data:
        for tok in text.split():
            vocab.setdefault(tok, len(vocab))
    return vocab


def text_pipeline(vocab, text):
    return [vocab.get(tok, UNK_IDX) for tok in text.split()]


def make_collate(vocab):
    def collate_batch(batch):
        label_list, text_list, lengths = [], [], []
        for label, text in batch:
            ids = torch.tensor(text_pipeline(vocab, text), dtype=torch.int64)
            label_list.append(label)
            text_list.append(ids)
            lengths.append(len(ids))
        labels = torch.tensor(label_list, dtype=torch.int64)
        texts = pad_sequence(text_list, batch_first=True, padding_value=PAD_IDX)
        return labels, texts, torch.tensor(lengths, dtype=torch.int64)

    return collate_batch


class LSTMClassifier(nn.Module):
    def __init__(self, vocab_size, embed_dim, hidden_dim, num_class, n_layers=1, dropout=0.5):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_IDX)
        self.lstm = nn.LSTM(
            embed_dim,
            hidden_dim,
            num_layers=n_layers,
            bidirectional=True,
            batch_first=True,
            dropout=dropout if n_layers > 1 else 0.0,
        )
        self.fc = nn.Linear(hidden_dim * 2, num_class)
        self.dropout = nn.Dropout(dropout)

    def forward(self, text, text_lengths):
        embedded = self.dropout(self.embedding(text))
        packed_embedded = pack_padded_sequence(
            embedded, text_lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        packed_output, (hidden, cell) = self.lstm(packed_embedded)
        output, output_lengths = pad_packed_sequence(packed_output, batch_first=True)
        # the last layer's forward and backward final states
        hidden = self.dropout(torch.cat((hidden[-2, :, :], hidden[-1, :, :]), dim=1))
        return self.fc(hidden), output, output_lengths


class GRUMeanClassifier(nn.Module):
    """Mean over the valid time steps of a packed GRU's padded output."""

    def __init__(self, vocab_size, embed_dim, hidden_dim, num_class):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_IDX)
        self.rnn = nn.GRU(embed_dim, hidden_dim, num_layers=2, batch_first=True)
        self.fc = nn.Linear(hidden_dim, num_class)

    def forward(self, text, text_lengths):
        packed = pack_padded_sequence(
            self.embedding(text), text_lengths, batch_first=True, enforce_sorted=False
        )
        packed_output, h_n = self.rnn(packed)
        output, lengths = pad_packed_sequence(
            packed_output, batch_first=True, total_length=text.size(1)
        )
        mean = output.sum(dim=1) / lengths.unsqueeze(1).to(output.dtype)
        return self.fc(mean)


def train(model, dataloader, optimizer, criterion):
    model.train()
    total_acc, total_count = 0, 0
    for label, text, lengths in dataloader:
        optimizer.zero_grad()
        predicted_label, _, _ = model(text, lengths)
        loss = criterion(predicted_label, label)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        total_acc += (predicted_label.argmax(1) == label).sum().item()
        total_count += label.size(0)
    return total_acc / total_count


def evaluate(model, dataloader, criterion):
    model.eval()
    total_acc, total_count, total_loss = 0, 0, 0.0
    with torch.no_grad():
        for label, text, lengths in dataloader:
            predicted_label, _, _ = model(text, lengths)
            total_loss += criterion(predicted_label, label).item() * label.size(0)
            total_acc += (predicted_label.argmax(1) == label).sum().item()
            total_count += label.size(0)
    return total_acc / total_count, total_loss / total_count


def predict(model, vocab, text):
    with torch.no_grad():
        ids = torch.tensor(text_pipeline(vocab, text))
        output, _, _ = model(ids.unsqueeze(0), torch.tensor([ids.size(0)]))
        return F.softmax(output, dim=1)[0, 1].item()


def main(epochs=1):
    torch.manual_seed(0)
    vocab = build_vocab(DATA)
    loader = DataLoader(DATA, batch_size=4, shuffle=True, collate_fn=make_collate(vocab))
    model = LSTMClassifier(len(vocab), 8, 8, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    criterion = torch.nn.CrossEntropyLoss()
    for epoch in range(epochs):
        acc = train(model, loader, optimizer, criterion)
        print(f"epoch {epoch} train accuracy {acc:.3f}")
    return evaluate(model, loader, criterion)


if __name__ == "__main__":
    main()
