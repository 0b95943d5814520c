// The sine light curve as a plain ES module, so worker threads can load it without a TS loader.
const LENGTH = 50;
const times = Array.from({ length: LENGTH }, (_, i) => i / (LENGTH - 1));

export function sine(theta) {
  const [phi0, amplitude, omega] = [theta[0], theta[1], theta[2]];
  return Float64Array.from(times, (t) => amplitude * Math.sin(omega * t + phi0));
}

export default sine;
