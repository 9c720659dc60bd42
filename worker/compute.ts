/**
 * Turns a task into a result: installs the weights that came with it, checks it holds the versions the
 * task names, and runs the phase on the StepComputer.
 */
import { GantryError } from "../shared/errors.ts";
import { PROTOCOL_VERSION, type ResultMessage, type TaskMessage } from "../shared/protocol.ts";
import type { StepComputer } from "../shared/step.ts";

export class TaskRunner {
  readonly #computer: StepComputer;
  #generatorVersion = -1;
  #discriminatorVersion = -1;

  constructor(computer: StepComputer) {
    this.#computer = computer;
  }

  run(task: TaskMessage): ResultMessage {
    if (task.generator) {
      this.#computer.setGeneratorWeights(task.generator);
      this.#generatorVersion = task.generatorVersion;
    }
    if (task.discriminator) {
      this.#computer.setDiscriminatorWeights(task.discriminator);
      this.#discriminatorVersion = task.discriminatorVersion;
    }
    if (
      this.#generatorVersion !== task.generatorVersion ||
      this.#discriminatorVersion !== task.discriminatorVersion
    ) {
      // Computing with other weights than the coordinator means would silently break the math.
      throw new GantryError(
        "E_PROTOCOL",
        `task of step ${task.step} wants weights G${task.generatorVersion}/D${task.discriminatorVersion}, ` +
          `this worker holds G${this.#generatorVersion}/D${this.#discriminatorVersion}`,
      );
    }
    const started = performance.now();
    const result = task.phase === "D"
      ? this.#computer.discriminatorPhase({
        count: task.count,
        real: task.real!,
        realLabels: task.realLabels!,
        z: task.z,
        fakeLabels: task.labels,
      })
      : this.#computer.generatorPhase({ count: task.count, z: task.z, labels: task.labels });
    const message: ResultMessage = {
      type: "result",
      version: PROTOCOL_VERSION,
      step: task.step,
      phase: task.phase,
      count: task.count,
      grads: result.grads,
      lossSum: result.lossSum,
      realScoreSum: result.realScoreSum,
      fakeScoreSum: result.fakeScoreSum,
      computeMs: performance.now() - started,
    };
    if (result.batchNormSums) message.batchNormSums = result.batchNormSums;
    return message;
  }
}
