"""C2ST as sbibm computes it, with scikit-learn (Debian's python3-sklearn), to check
bench/sbibm/c2st.ts (this project's classifier, built on its own MLP, grad and Adam) on the same
draws: both sets z-scored by the reference's mean and sd; MLPClassifier(relu, hidden layers
(10·dim, 10·dim), adam, max_iter 10000); shuffled 5-fold cross-validation; mean accuracy.

Usage: /usr/bin/python3 bench/sbibm/peers/c2st_sklearn.py REFERENCE.npy DRAWS.npy [DRAWS.npy ...]
(first 10,000 rows of each)
"""
import sys

import numpy as np
from sklearn.model_selection import KFold, cross_val_score
from sklearn.neural_network import MLPClassifier


def c2st(reference, draws, seed=1, folds=5):
    mean, sd = reference.mean(0), reference.std(0)
    a, b = (reference - mean) / sd, (draws - mean) / sd
    data = np.concatenate([a, b])
    labels = np.concatenate([np.zeros(len(a)), np.ones(len(b))])
    dim = a.shape[1]
    clf = MLPClassifier(
        activation="relu", hidden_layer_sizes=(10 * dim, 10 * dim), max_iter=10000, solver="adam", random_state=seed
    )
    split = KFold(n_splits=folds, shuffle=True, random_state=seed)
    return cross_val_score(clf, data, labels, cv=split, scoring="accuracy").mean()


reference = np.load(sys.argv[1]).astype(np.float64)[:10000]
for path in sys.argv[2:]:
    draws = np.load(path).astype(np.float64)[:10000]
    print(f"{path}: scikit-learn C2ST {c2st(reference, draws):.3f}", flush=True)
