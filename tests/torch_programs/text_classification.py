"""An ``nn.EmbeddingBag`` text classifier in the style of the torchtext tutorial "Text
classification with the torchtext library" (flat token ids plus ``offsets``, a
``collate_batch`` that builds them with ``cumsum``), in plain PyTorch, on a tiny built-in
news data set.

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

import time

import torch
from torch import nn
from torch.utils.data import DataLoader

NEWS = [
    (1, "the team won the match in the final minute"),
    (2, "stocks fell as the market closed lower"),
    (3, "new phone chip doubles battery life"),
    (1, "the striker scored twice"),
    (2, "the bank raised interest rates again"),
    (3, "engineers unveil a faster chip"),
    (1, "fans cheered as the team lifted the cup"),
    (2, "oil prices and the market rose"),
    (3, "the phone maker released new software"),
]


def yield_tokens(data_iter):
    for _, text in data_iter:
        yield text.lower().split()


def build_vocab_from_iterator(iterator, specials=("<unk>",)):
    vocab = {s: i for i, s in enumerate(specials)}
    for tokens in iterator:
        for tok in tokens:
            if tok not in vocab:
                vocab[tok] = len(vocab)
    return vocab


VOCAB = build_vocab_from_iterator(yield_tokens(NEWS))


def text_pipeline(x):
    return [VOCAB.get(tok, 0) for tok in x.lower().split()]


def label_pipeline(x):
    return int(x) - 1


def collate_batch(batch):
    label_list, text_list, offsets = [], [], [0]
    for _label, _text in batch:
        label_list.append(label_pipeline(_label))
        processed_text = torch.tensor(text_pipeline(_text), dtype=torch.int64)
        text_list.append(processed_text)
        offsets.append(processed_text.size(0))
    label_list = torch.tensor(label_list, dtype=torch.int64)
    offsets = torch.tensor(offsets[:-1]).cumsum(dim=0)
    text_list = torch.cat(text_list)
    return label_list, text_list, offsets


class TextClassificationModel(nn.Module):
    def __init__(self, vocab_size, embed_dim, num_class, mode="mean"):
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, mode=mode, sparse=False)
        self.fc = nn.Linear(embed_dim, num_class)
        self.init_weights()

    def init_weights(self):
        initrange = 0.5
        self.embedding.weight.data.uniform_(-initrange, initrange)
        self.fc.weight.data.uniform_(-initrange, initrange)
        self.fc.bias.data.zero_()

    def forward(self, text, offsets):
        embedded = self.embedding(text, offsets)
        return self.fc(embedded)


def train(model, dataloader, optimizer, criterion, epoch):
    model.train()
    total_acc, total_count = 0, 0
    log_interval = 500
    start_time = time.time()
    for idx, (label, text, offsets) in enumerate(dataloader):
        optimizer.zero_grad()
        predicted_label = model(text, offsets)
        loss = criterion(predicted_label, label)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        total_acc += (predicted_label.argmax(1) == label).sum().item()
        total_count += label.size(0)
        if idx % log_interval == 0 and idx > 0:
            elapsed = time.time() - start_time
            print(
                f"| epoch {epoch:3d} | {idx:5d} batches | accuracy {total_acc / total_count:8.3f}"
                f" | {elapsed:5.2f} s"
            )
            total_acc, total_count = 0, 0
            start_time = time.time()


def evaluate(model, dataloader, criterion):
    model.eval()
    total_acc, total_count, total_loss = 0, 0, 0.0
    with torch.no_grad():
        for _idx, (label, text, offsets) in enumerate(dataloader):
            predicted_label = model(text, offsets)
            loss = criterion(predicted_label, label)
            total_loss += loss.item() * label.size(0)
            total_acc += (predicted_label.argmax(1) == label).sum().item()
            total_count += label.size(0)
    return total_acc / total_count, total_loss / total_count


def predict(model, text):
    with torch.no_grad():
        text = torch.tensor(text_pipeline(text))
        output = model(text, torch.tensor([0]))
        return output.argmax(1).item() + 1


def main(epochs=2, lr=5.0, batch_size=4):
    torch.manual_seed(0)
    num_class = len(set([label for (label, text) in NEWS]))
    model = TextClassificationModel(len(VOCAB), 16, num_class)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1.0, gamma=0.1)
    train_dataloader = DataLoader(
        NEWS, batch_size=batch_size, shuffle=True, collate_fn=collate_batch
    )
    for epoch in range(1, epochs + 1):
        train(model, train_dataloader, optimizer, criterion, epoch)
        scheduler.step()
    accuracy, _ = evaluate(model, train_dataloader, criterion)
    return accuracy, predict(model, "the chip is fast")


if __name__ == "__main__":
    print(main())
