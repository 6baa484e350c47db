/**
 * The base of every command: --json with the envelope of docs/architecture.md (errors and exit codes) and the documented exit code.
 *
 * oclif's own --json handling prints the error object but then exits 1 whatever the error said, and prints
 * success results without our envelope; we override toSuccessJson and catch to keep both the envelope and
 * the exit code.
 */
import { Command, Flags, Interfaces } from '@oclif/core'
import { errorEnvelope, jsonText, renderError, successEnvelope } from './render.js'
import { restoreShell, storeRoot } from './env.js'
import { ExitCode } from './errors.js'
import type { Progress } from './progress.js'
import { withTaskList } from './tasks.js'

export type InferredFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>

export abstract class BaseCommand extends Command {
  static enableJsonFlag = true

  async init(): Promise<void> {
    // src/cli.ts may have filled in $SHELL for oclif (lib/env.ts fillShellForOclif): not for what we spawn.
    restoreShell()
    await super.init()
  }

  protected toSuccessJson(result: unknown): unknown {
    return successEnvelope(result)
  }

  protected toErrorJson(err: unknown): unknown {
    return errorEnvelope(err)
  }

  protected logJson(json: unknown): void {
    process.stdout.write(jsonText(json))
  }

  /** Renders the error and sets the exit code; not rethrown, so oclif's handler does not print it again. */
  async catch(err: Error & { exitCode?: number }): Promise<void> {
    // A parse that threw (unknown flag, extra argument) was still a call to parse: without this, oclif
    // outside production adds a warning that the command "did not parse its arguments" to stderr.
    this.parsed = true
    renderError(err, this.jsonEnabled(), { doing: `running \`${this.config.bin} ${(this.id ?? '').replaceAll(':', ' ')}\`` })
  }

  /** Runs a library call under the command's one task list on stderr (nothing under --json). */
  protected withProgress<T>(fn: (progress: Progress) => Promise<T>, options: { callerHandlesSigint?: boolean } = {}): Promise<T> {
    return withTaskList(fn, { quiet: this.jsonEnabled(), ...options })
  }

  /**
   * Runs a library call that stops cleanly when aborted (trtexec killed, staging removed): SIGINT (Ctrl-C)
   * and SIGTERM abort its signal, and the call's InterruptedError ends the command with exit 130. A second
   * signal while it winds down exits at once.
   */
  protected async withInterrupt<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController()
    const onSignal = (): void => {
      if (controller.signal.aborted) process.exit(ExitCode.interrupted)
      controller.abort()
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    try {
      return await fn(controller.signal)
    } finally {
      process.removeListener('SIGINT', onSignal)
      process.removeListener('SIGTERM', onSignal)
    }
  }

  /**
   * What failed after a change was made (the change stands): `Warning:` lines on stderr; under --json the
   * result's own `warnings` array says it. Returns the result for chaining.
   */
  protected withWarnings<T extends { warnings?: string[] }>(result: T): T {
    if (!this.jsonEnabled()) for (const w of result.warnings ?? []) process.stderr.write(`Warning: ${w}\n`)
    return result
  }

  /** Human output (suppressed under --json). */
  protected say(text: string): void {
    if (!this.jsonEnabled()) process.stdout.write(text.endsWith('\n') ? text : text + '\n')
  }
}

/** The --store flag every store-facing command takes. */
export const storeFlag = Flags.string({
  description: 'model store root [default: $MODEL_STORE_ROOT, else ./model-store]',
  helpValue: '<dir>',
})

/** The model registry a store-facing command keeps up to date (or a registry command reads). */
export const registryFlag = Flags.string({
  description: 'PostgreSQL URL of the model registry [default: $MODELFORGE_REGISTRY_URL, else the embedded one in the store when it exists]',
  helpValue: '<postgres://...>',
})

/** Capabilities a finalize records for the model registry (finalize, build-engine). */
export const capabilityFlag = Flags.string({
  description: 'capability key=value recorded in the manifest for the model registry (repeatable; JSON values such as true or 512 are JSON, dotted keys nest)',
  multiple: true,
  helpValue: '<key=value>',
})

/** The flags of every command that finalizes a version (store finalize, store import). */
export const finalizeFlags = {
  metadata: Flags.string({ description: 'metadata entry key=value (repeatable)', multiple: true, helpValue: '<key=value>' }),
  'metadata-file': Flags.string({ description: 'JSON file holding a metadata object', helpValue: '<file>' }),
  'legacy-checksum': Flags.boolean({
    description: "put the original Python ModelStore's checksum in the manifest's checksum (its verify_manifest accepts the version), sha256-files-v1 in files_checksum [default: store.legacyChecksum of MODELFORGE_CONFIG, else off]",
    allowNo: true,
  }),
}

export function resolveStore(flag: string | undefined): string {
  return storeRoot(flag)
}
