"""Two recurrent programs in the style of pytorch/examples, in plain PyTorch:

* ``Sequence``: time_sequence_prediction's two stacked ``LSTMCell``s that walk over
  ``input.split(1, dim=1)`` and then keep predicting ``future`` steps from their own
  output (on generated sine waves);
* ``RowLSTM``: an MNIST-as-a-sequence classifier (each of the 28 image rows is one time
  step of an ``nn.LSTM``), on synthetic digits.

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim


def make_sine_data(N=8, L=40, T=20, seed=2):
    np.random.seed(seed)
    x = np.empty((N, L), "int64")
    x[:] = np.array(range(L)) + np.random.randint(-4 * T, 4 * T, N).reshape(N, 1)
    data = np.sin(x / 1.0 / T).astype("float32")
    return data


class Sequence(nn.Module):
    def __init__(self, hidden=51):
        super().__init__()
        self.hidden = hidden
        self.lstm1 = nn.LSTMCell(1, hidden)
        self.lstm2 = nn.LSTMCell(hidden, hidden)
        self.linear = nn.Linear(hidden, 1)

    def forward(self, input, future=0):
        outputs = []
        h_t = torch.zeros(input.size(0), self.hidden, dtype=torch.float)
        c_t = torch.zeros(input.size(0), self.hidden, dtype=torch.float)
        h_t2 = torch.zeros(input.size(0), self.hidden, dtype=torch.float)
        c_t2 = torch.zeros(input.size(0), self.hidden, dtype=torch.float)

        for input_t in input.split(1, dim=1):
            h_t, c_t = self.lstm1(input_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        for _i in range(future):  # if we should predict the future
            h_t, c_t = self.lstm1(output, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        outputs = torch.stack(outputs, 1).squeeze(2)
        return outputs


def predict_future(seq, test_input, test_target, future=10):
    with torch.no_grad():
        pred = seq(test_input, future=future)
        loss = nn.MSELoss()(pred[:, :-future], test_target)
        y = pred.detach().numpy()
    return loss.item(), y


def sine_main(steps=1, future=10):
    data = make_sine_data()
    input = torch.from_numpy(data[2:, :-1])
    target = torch.from_numpy(data[2:, 1:])
    test_input = torch.from_numpy(data[:2, :-1])
    test_target = torch.from_numpy(data[:2, 1:])
    torch.manual_seed(0)
    seq = Sequence(hidden=8)
    criterion = nn.MSELoss()
    optimizer = optim.Adam(seq.parameters(), lr=0.01)
    for _i in range(steps):
        optimizer.zero_grad()
        out = seq(input)
        loss = criterion(out, target)
        print("loss:", loss.item())
        loss.backward()
        optimizer.step()
    return predict_future(seq, test_input, test_target, future)


# ------------------------------------------------------------------ MNIST as a sequence
class RowLSTM(nn.Module):
    def __init__(self, input_size=28, hidden_size=32, num_layers=2, num_classes=10):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        # x: (batch, 1, 28, 28) -> (batch, 28 time steps, 28 features)
        x = x.reshape(-1, 28, 28)
        h0 = torch.zeros(self.num_layers, x.size(0), self.hidden_size).to(x.device)
        c0 = torch.zeros(self.num_layers, x.size(0), self.hidden_size).to(x.device)
        out, _ = self.lstm(x, (h0, c0))
        out = self.fc(out[:, -1, :])
        return F.log_softmax(out, dim=1)


def synthetic_digits(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, 28, 28, generator=g)
    targets = torch.randint(0, 10, (n,), generator=g)
    return (images - 0.1307) / 0.3081, targets


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    test_loss /= len(test_loader.dataset)
    return test_loss, correct


def mnist_main(n=16):
    torch.manual_seed(1)
    images, targets = synthetic_digits(n)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(images, targets), batch_size=8
    )
    model = RowLSTM()
    return test(model, torch.device("cpu"), loader)


if __name__ == "__main__":
    print(sine_main())
    print(mnist_main())
