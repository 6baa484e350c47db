/**
 * The trtexec test double's entry (run by ./trtexec, which passes argv[0] as typed first). It plays one
 * trtexec run for the version in TRTEXEC_DOUBLE_VERSION, in trtexec's order: the RUNNING line, the options
 * (help and unknown-option failures), the options dump, the device, the engine (built from --onnx or
 * loaded), then inference unless --skipInference, and the PASSED or FAILED line. What it models and where
 * each behaviour comes from is in README.md next to this file.
 */
import { DoubleError, type Run } from './context.js'
import { deviceBlock } from './device.js'
import { dumpOptions } from './dump.js'
import { readEnv, type DoubleEnv } from './env.js'
import { Exit, failed } from './exit.js'
import { Log, writeAll } from './log.js'
import { InvalidArgument, parseOptions, UncaughtException } from './options.js'
import { recordEnd, startRecord } from './record.js'
import { bannerTag } from './version.js'

const [argv0 = 'trtexec', ...args] = process.argv.slice(2)
startRecord(process.env.TRTEXEC_DOUBLE_RECORD, [argv0, ...args])

// trtexec dies of SIGINT and SIGTERM at once; the double does too, after noting its end in the record.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    recordEnd({ signal })
    process.kill(process.pid, signal)
  })
}

function finish(code: number): never {
  recordEnd({ exit: code })
  process.exit(code)
}

async function play(env: DoubleEnv, log: Log): Promise<never> {
  const v = env.version
  const help = async () => log.raw((await import('./help.js')).helpText(v))
  let parsed
  try {
    parsed = parseOptions(args, v, env.gpu.sm, (severity, message) => log.line(severity, message))
  } catch (err) {
    if (err instanceof InvalidArgument) {
      await help()
      log.error(err.message)
      throw failed()
    }
    if (err instanceof UncaughtException) {
      log.error(`Uncaught exception detected: ${err.message}`)
      throw failed()
    }
    throw err
  }
  if (parsed.help === 'help-flag') {
    await help()
    throw new Exit(0, null)
  }
  if (parsed.help === 'no-arguments') {
    await help()
    throw new Exit(0, 'PASSED')
  }
  if (parsed.unknown.length) {
    await help()
    for (const a of parsed.unknown) log.error(`Unknown option: ${a.key} ${a.value}`)
    throw failed()
  }
  const o = parsed.options!
  const run: Run = { log, o, env }
  dumpOptions(log, o)
  log.verbose = o.verbose
  if (env.fault === 'no-gpu') {
    log.info('=== Device Information ===')
    log.info('Cannot find any available devices (GPUs)!')
    throw new Exit(1, null)
  }
  deviceBlock(log, env.gpu, v, o.device)
  log.info()
  log.info(`TensorRT version: ${v.text}`)
  log.info('Loading standard plugins')
  for (const p of o.plugins) log.info(`Loading supplied plugin library: ${p}`)
  const { loadEngine, infer, layerInfo } = await import('./infer.js')
  const engine = o.loadEngine !== undefined ? loadEngine(run) : await (await import('./build.js')).buildEngine(run)
  if (o.skipInference) {
    await layerInfo(run, engine.record)
    log.info('Skipped inference phase since --skipInference is added.')
    throw new Exit(0, 'PASSED')
  }
  await infer(run, engine)
  throw new Exit(0, 'PASSED')
}

async function main(): Promise<void> {
  let env: DoubleEnv
  try {
    env = readEnv(process.env)
  } catch (err) {
    writeAll(2, `trtexec double: ${(err as Error).message}\n`)
    finish(70)
  }
  const log = new Log(bannerTag(env.version), [argv0, ...args].join(' '))
  log.banner('RUNNING')
  try {
    await play(env, log)
  } catch (err) {
    if (err instanceof Exit) {
      if (err.banner) log.banner(err.banner)
      finish(err.code)
    }
    // Not a trtexec outcome: the double could not play the run (a bug, or a plan whose ONNX file is gone).
    writeAll(2, `trtexec double: ${err instanceof DoubleError ? err.message : (err as Error).stack}\n`)
    finish(70)
  }
}

await main()
