"""Writes bench/fixtures/nbi-sine-observation.json: the observation and true parameters of nbi's
own sine test (test_engine.py's seed-0 draws, rebuilt by the anchor's sine_problem.py), so that
`npm run bench:sine` fits exactly the x_obs nbi 0.4.1 fits in the same run, without Python.

  /usr/bin/python3 bench/nbi_sine_observation.py
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "anchors", "nbi"))
from sine_problem import make_observation  # noqa: E402

y_true, x_obs = make_observation()
out = os.path.join(HERE, "fixtures", "nbi-sine-observation.json")
with open(out, "w") as f:
    json.dump({"thetaTrue": [float(v) for v in y_true], "xObs": [float(v) for v in x_obs]}, f, indent=1)
    f.write("\n")
print(out)
