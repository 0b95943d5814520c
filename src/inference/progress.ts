/**
 * Progress bars for fit (cli-progress: a maintained, dependency-light terminal bar that degrades
 * to silence when stderr is not a terminal): one bar per round's simulations and one per epoch.
 * cli-progress is imported when the first bars are asked for, so nothing else pays for it.
 */
import type { SingleBar } from "cli-progress";
import type { Hooks } from "./snpe.js";

export async function progressHooks<T extends Hooks>(user: T): Promise<T> {
  const { default: cliProgress } = await import("cli-progress");
  let bar: SingleBar | undefined;
  let label = "";
  const start = (name: string, total: number) => {
    bar?.stop();
    label = name;
    bar = new cliProgress.SingleBar(
      {
        format: `{label} |{bar}| {value}/{total} {extra}`,
        hideCursor: true,
        clearOnComplete: false,
        stream: process.stderr,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { label, extra: "" });
  };
  return {
    ...user,
    onSimulate: (round, done, total) => {
      if (label !== `round ${round} simulate`) start(`round ${round} simulate`, total);
      bar!.update(done);
      if (done === total) {
        bar!.stop();
        label = "";
      }
      user.onSimulate?.(round, done, total);
    },
    onStep: (round, epoch, step, steps, candidate) => {
      const name = `round ${round} epoch ${epoch}${candidate ? ` (${candidate})` : ""}`;
      if (label !== name) start(name, steps);
      bar!.update(step);
      user.onStep?.(round, epoch, step, steps, candidate);
    },
    onEpoch: (round, record) => {
      bar?.update(bar.getTotal(), {
        extra: `train ${record.trainLoss.toFixed(3)} val ${record.valLoss.toFixed(3)}`,
      });
      bar?.stop();
      label = "";
      user.onEpoch?.(round, record);
    },
  };
}
