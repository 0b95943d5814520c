"""sbi's training loop, shared by the peers in this folder (written for this project from sbi's
published defaults, no sbi code): shuffled minibatches of the training rows, Adam steps with the
gradient norm clipped, an epoch's validation loss, stop after `patience` epochs without a better
one and restore the best state."""
import math

import torch


def train_with_patience(net, opt, train_rows, val_rows, loss_of, batch, patience=20, clip=5.0):
    """Trains `net` on `loss_of(rows)` (a mean loss over those row indices); returns
    (epochs run, best validation loss), the best state loaded back."""
    best, best_state, since, epochs = math.inf, None, 0, 0
    while since < patience:
        epochs += 1
        shuffled = train_rows[torch.randperm(len(train_rows))]
        for s in range(0, len(shuffled), batch):
            loss = loss_of(shuffled[s : s + batch])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
            opt.step()
        with torch.no_grad():
            v = loss_of(val_rows).item()
        if v < best:
            best, since = v, 0
            best_state = {k: t.clone() for k, t in net.state_dict().items()}
        else:
            since += 1
    net.load_state_dict(best_state)
    return epochs, best
