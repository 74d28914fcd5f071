"""A DCGAN in the style of pytorch/examples' dcgan/main.py, in plain PyTorch (64x64
images; small widths by default so it runs on a CPU).

The tests load this file unchanged except for its import lines and run it on jaxmod.
"""

import torch
import torch.nn as nn
import torch.optim as optim


# custom weights initialization called on netG and netD
def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        torch.nn.init.normal_(m.weight, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        torch.nn.init.normal_(m.weight, 1.0, 0.02)
        torch.nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, ngpu, nz, ngf, nc):
        super().__init__()
        self.ngpu = ngpu
        self.main = nn.Sequential(
            # input is Z, going into a convolution
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            # state size. (ngf*8) x 4 x 4
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            # state size. (ngf*4) x 8 x 8
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            # state size. (ngf*2) x 16 x 16
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            # state size. (ngf) x 32 x 32
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
            # state size. (nc) x 64 x 64
        )

    def forward(self, input):
        if input.is_cuda and self.ngpu > 1:
            output = nn.parallel.data_parallel(self.main, input, range(self.ngpu))
        else:
            output = self.main(input)
        return output


class Discriminator(nn.Module):
    def __init__(self, ngpu, ndf, nc):
        super().__init__()
        self.ngpu = ngpu
        self.main = nn.Sequential(
            # input is (nc) x 64 x 64
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf) x 32 x 32
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*2) x 16 x 16
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*4) x 8 x 8
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*8) x 4 x 4
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, input):
        if input.is_cuda and self.ngpu > 1:
            output = nn.parallel.data_parallel(self.main, input, range(self.ngpu))
        else:
            output = self.main(input)

        return output.view(-1, 1).squeeze(1)


real_label = 1
fake_label = 0


def discriminator_loss(netD, criterion, real_cpu, fake):
    """(1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))"""
    batch_size = real_cpu.size(0)
    label = torch.full((batch_size,), real_label, dtype=real_cpu.dtype, device=real_cpu.device)
    output = netD(real_cpu)
    errD_real = criterion(output, label)
    D_x = output.mean()

    label = torch.full_like(label, fake_label)  # a new tensor: BCE saved the old one
    output = netD(fake.detach())
    errD_fake = criterion(output, label)
    D_G_z1 = output.mean()
    return errD_real + errD_fake, (D_x, D_G_z1)


def generator_loss(netD, criterion, fake):
    """(2) Update G network: maximize log(D(G(z)))"""
    label = torch.empty(fake.size(0), dtype=fake.dtype, device=fake.device)
    label.fill_(real_label)  # fake labels are real for generator cost
    output = netD(fake)
    errG = criterion(output, label)
    return errG, output.mean()


def train_step(netG, netD, optimizerG, optimizerD, criterion, real_cpu, nz):
    batch_size = real_cpu.size(0)
    noise = torch.randn(batch_size, nz, 1, 1, device=real_cpu.device)
    fake = netG(noise)

    netD.zero_grad()
    errD, (D_x, D_G_z1) = discriminator_loss(netD, criterion, real_cpu, fake)
    errD.backward()
    optimizerD.step()

    netG.zero_grad()
    errG, D_G_z2 = generator_loss(netD, criterion, fake)
    errG.backward()
    optimizerG.step()
    return errD.item(), errG.item(), D_x.item(), D_G_z1.item(), D_G_z2.item()


def build(nz=8, ngf=8, ndf=8, nc=3, ngpu=1, lr=0.0002, beta1=0.5, device="cpu"):
    netG = Generator(ngpu, nz, ngf, nc).to(device)
    netG.apply(weights_init)
    netD = Discriminator(ngpu, ndf, nc).to(device)
    netD.apply(weights_init)
    criterion = nn.BCELoss()
    optimizerD = optim.Adam(netD.parameters(), lr=lr, betas=(beta1, 0.999))
    optimizerG = optim.Adam(netG.parameters(), lr=lr, betas=(beta1, 0.999))
    return netG, netD, criterion, optimizerG, optimizerD


def main(iters=2, batch_size=4, nz=8, seed=999):
    torch.manual_seed(seed)
    netG, netD, criterion, optimizerG, optimizerD = build(nz=nz)
    fixed_noise = torch.randn(batch_size, nz, 1, 1)
    for _ in range(iters):
        real_cpu = torch.rand(batch_size, 3, 64, 64) * 2 - 1
        stats = train_step(netG, netD, optimizerG, optimizerD, criterion, real_cpu, nz)
    with torch.no_grad():
        fake = netG(fixed_noise).detach().cpu()
    return stats, tuple(fake.shape)


if __name__ == "__main__":
    print(main())
