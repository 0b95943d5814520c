/**
 * Quick start: fit a small MLP to noisy samples of sin(x) with `valueAndGrad` and plain gradient
 * descent, then check per-example gradients with `vmap(grad(...))`. Run: npm run demo
 */
import { type Array, grad, np, random, tree, valueAndGrad, vmap } from "../src/index.js";

type Params = { w1: Array; b1: Array; w2: Array; b2: Array };

function init(key: Array, hidden: number): Params {
  const [k1, k2] = random.splitList(key);
  return {
    w1: random.normal(k1!, [1, hidden]),
    b1: np.zeros([hidden]),
    w2: random.normal(k2!, [hidden, 1]).mul(1 / Math.sqrt(hidden)),
    b2: np.zeros([1]),
  };
}

const predict = (p: Params, x: Array) => np.tanh(x.matmul(p.w1).add(p.b1)).matmul(p.w2).add(p.b2);
const loss = (p: Params, x: Array, y: Array) => np.mean(np.square(predict(p, x).sub(y)));

const [kData, kNoise, kInit] = random.splitList(random.key(0), 3);
const x = random.uniform(kData!, [256, 1], { minval: -3, maxval: 3 });
const y = np.sin(x).add(random.normal(kNoise!, [256, 1]).mul(0.1));

let params = init(kInit!, 32);
const step = valueAndGrad(loss);
for (let epoch = 0; epoch <= 2000; epoch++) {
  const [value, grads] = step(params, x, y);
  params = tree.map((p: Array, g: Array) => p.sub(g.mul(0.05)), params, grads) as Params;
  if (epoch % 400 === 0)
    console.log(`epoch ${String(epoch).padStart(4)}  mse ${value.item().toFixed(4)}`);
}

// Per-example gradients: vmap over the batch of the gradient of a single-example loss.
const perExample = vmap(
  grad((p: Params, xi: Array, yi: Array) => loss(p, xi.reshape([1, 1]), yi.reshape([1, 1]))),
  {
    inAxes: [null, 0, 0],
  },
)(params, x, y) as Params;
console.log("per-example gradient of w1:", perExample.w1.shape, "(batch × in × hidden)");
const xs = np.linspace(-3, 3, 7).reshape([7, 1]);
console.log("x       ", xs.reshape([7]).toString());
console.log("fit     ", predict(params, xs).reshape([7]).toString());
console.log("sin(x)  ", np.sin(xs).reshape([7]).toString());
