/**
 * Why a trtexec run failed, read from its log: the class (types.ts FailureClass), one sentence of cause, the
 * operator or node the log names, the last error lines and what to do. The patterns are TensorRT's own
 * messages (../shared/research/trt-anchors.md 1.4 and 1.8, and the cookbook logs in fixtures/trtexec-logs).
 *
 * The rules run in a fixed order, first match wins, because one failure prints a chain: an unsupported
 * operator also prints "Failed to parse onnx file", an out-of-memory build also prints "Engine could not be
 * created", a crash may follow any of them. Only messages that end a run count: an out-of-memory error
 * while TensorRT times tactics is not fatal when the build then passes, and the caller only asks here when
 * the run failed.
 */
import type { LogLine } from './trtexec-lines.js'
import type { ParsedLog, TrtexecFailure, TrtVersion } from './types.js'

export interface FailureEvidence {
  lines: readonly LogLine[]
  status: ParsedLog['status']
  exitCode?: number
  /** The signal that ended trtexec (from the exit, or 128+N exit codes). */
  signal?: string
  version?: TrtVersion
  /** From `Created engine with size:`: 10.13+ writes the engine while building, 0 MiB when the build failed. */
  createdEngineMiB?: number
}

const MAX_LAST_ERRORS = 8

// Lines that are errors without going through trtexec's logger: libstdc++ on an uncaught exception, the
// shell's report of a signal, CUDA checks in trtexec's samples code.
const RAW_ERROR = /^(Cuda failure|CUDA failure|terminate called|what\(\):|Segmentation fault|Aborted|Bus error|Illegal instruction|Floating point exception)/
const SIGNAL_LINE: Record<string, string> = {
  'Segmentation fault': 'SIGSEGV',
  Aborted: 'SIGABRT',
  'Bus error': 'SIGBUS',
  'Illegal instruction': 'SIGILL',
  'Floating point exception': 'SIGFPE',
}

/** What the rules search: a message with the raw lines that belong to it. */
function whole(line: LogLine): string[] {
  return [line.text, ...(line.more ?? [])]
}

class Log {
  readonly errors: LogLine[]
  constructor(readonly lines: readonly LogLine[]) {
    this.errors = lines.filter((l) => l.level === 'E' || l.level === 'F')
  }

  /** The first match of `re` in the [E]/[F] messages (with their raw continuation lines). */
  error(re: RegExp): RegExpExecArray | undefined {
    for (const line of this.errors) for (const text of whole(line)) {
      const m = re.exec(text)
      if (m) return m
    }
    return undefined
  }

  /** The first match in any message or raw line. */
  any(re: RegExp, levels?: readonly LogLine['level'][]): RegExpExecArray | undefined {
    for (const line of this.lines) {
      if (levels && !levels.includes(line.level)) continue
      const m = re.exec(line.text)
      if (m) return m
    }
    return undefined
  }

  /** The last match in any message or raw line (the plugin search nearest the failure). */
  lastAny(re: RegExp, levels?: readonly LogLine['level'][]): RegExpExecArray | undefined {
    let found: RegExpExecArray | undefined
    for (const line of this.lines) {
      if (levels && !levels.includes(line.level)) continue
      const m = re.exec(line.text)
      if (m) found = m
    }
    return found
  }

  /** How far the run got, for a cause that has nothing better to say. */
  phase(): string {
    let phase = 'before it read the model'
    for (const { level, text } of this.lines) {
      if (level !== 'I') continue
      if (/^Start parsing network model/.test(text)) phase = 'while parsing the model'
      else if (/^Finish(ed)? parsing network model/.test(text)) phase = 'after parsing the model (setting up or building the engine)'
      else if (/^Engine built in /.test(text)) phase = 'after building the engine'
      else if (/^Engine loaded in |^Engine deserialized in /.test(text)) phase = 'after loading the engine'
      else if (/^Starting inference/.test(text)) phase = 'during inference'
    }
    return phase
  }

  /** The last error lines, without timestamps: [E]/[F] messages, raw error lines, "no GPU" notices. */
  lastErrors(): string[] {
    const picked = this.lines.filter(
      (l) => l.level === 'E' || l.level === 'F' || (l.level === 'raw' && RAW_ERROR.test(l.text)) || /^Cannot find (any available devices|device ID)/.test(l.text),
    )
    return picked.slice(-MAX_LAST_ERRORS).map((l) => l.text)
  }
}

/** A cause ends with a full stop, whatever the message it quotes ends with. */
function sentence(text: string): string {
  return /[.!]$/.test(text) ? text : `${text}.`
}

/** "TensorRT 10.16.1", or "this TensorRT" when the log did not say. */
function trt(v: TrtVersion | undefined): string {
  return v ? `TensorRT ${v.text}` : 'this TensorRT'
}

/** The detail an error names in parentheses: `Error Code 4: Internal Error (Reshape_3: ...)`. */
function detailOf(text: string): string {
  const code = /Error Code \d+: [\w ]+? \((.*)\)\s*$/.exec(text)
  if (code) return code[1].trim()
  const node = /\(\w+\): [A-Z_]+: (.*)$/.exec(text)
  if (node) return node[1].trim()
  return text.replace(/^\[TRT\] /, '').replace(/^Error\[\d+\]: /, '').trim()
}

interface NodeRef {
  op?: string
  node?: string
  number?: string
  domain?: string
}

/** The node and operator an ONNX parser error names, in any of the forms 8.x and 10.x print. */
function nodeRef(log: Log): NodeRef {
  const ref: NodeRef = {}
  const withName = log.error(/In node (-?\d+) with name: (.*?) and operator: (\S*) \(/)
  if (withName) {
    if (withName[1] !== '-1') ref.number = withName[1]
    if (withName[2]) ref.node = withName[2]
    if (withName[3]) ref.op = withName[3]
  }
  const parsing = log.error(/While parsing node number (\d+) \[([^\s\]]+)/)
  if (parsing) {
    ref.number ??= parsing[1]
    ref.op ??= parsing[2]
  }
  const dump = nodeDump(log)
  ref.node ??= dump.name ?? log.error(/Invalid Node - (.+)$/)?.[1]?.trim()
  ref.op ??= dump.opType ?? log.error(/No importer registered for op: ([^\s.]+)/)?.[1]
  if (dump.domain && dump.domain !== 'ai.onnx') ref.domain = dump.domain
  return ref
}

/**
 * The NodeProto TensorRT 8.x prints between `--- Begin node ---` and `--- End node ---` (text format, in
 * field order: input, output, name, op_type, attribute { name: ... }, doc_string, domain).
 */
function nodeDump(log: Log): { name?: string; opType?: string; domain?: string } {
  const dump: { name?: string; opType?: string; domain?: string } = {}
  for (const line of log.errors) {
    let inAttributes = false
    for (const text of whole(line)) {
      if (/^attribute \{/.test(text)) inAttributes = true
      const name = /^name: "(.+)"$/.exec(text)
      if (name && !inAttributes) dump.name ??= name[1]
      const opType = /^op_type: "(.+)"$/.exec(text)
      if (opType) dump.opType ??= opType[1]
      const domain = /^domain: "(.+)"$/.exec(text)
      if (domain) dump.domain ??= domain[1]
    }
  }
  return dump
}

function nodeText(ref: NodeRef): string {
  if (ref.node && ref.op) return `node ${ref.node} (${ref.op})`
  if (ref.node) return `node ${ref.node}`
  if (ref.number && ref.op) return `node number ${ref.number} (${ref.op})`
  if (ref.number) return `node number ${ref.number}`
  return ''
}

type Draft = Omit<TrtexecFailure, 'lastErrors'>
type Rule = (log: Log, e: FailureEvidence) => Draft | undefined

const CHECK_GPU = 'Check `nvidia-smi`: the NVIDIA driver must be loaded and a GPU visible to this process (CUDA_VISIBLE_DEVICES; a container needs --gpus); a driver older than the CUDA of this TensorRT fails the same way.'

function crash(log: Log, e: FailureEvidence): Draft | undefined {
  const terminate = log.any(/^terminate called (?:after throwing an instance of '([^']+)'|.*)/, ['raw'])
  const signalLine = log.any(/^(Segmentation fault|Aborted|Bus error|Illegal instruction|Floating point exception)\b/, ['raw'])
  // lib/exec.ts run() reports a process killed by a signal as exit code -1 without naming the signal.
  const killed = e.exitCode === -1
  if (!e.signal && !terminate && !signalLine && !killed) return undefined
  const signal = e.signal ?? (signalLine ? SIGNAL_LINE[signalLine[1]] : terminate ? 'SIGABRT' : 'a signal')
  const what = log.any(/^what\(\):\s*(.*)$/, ['raw'])?.[1] || terminate?.[1]
  const stopped = ['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP'].includes(signal)
  const cause = `trtexec was killed by ${signal} ${log.phase()}${what ? `, after an uncaught C++ exception (${what})` : ''}.`
  let hint = stopped
    ? `${signal} comes from outside trtexec: a timeout, Ctrl-C, or the kernel's out-of-memory killer (see \`dmesg\`); rerun the build when the machine has memory to spare.`
    : `${signal} ended trtexec inside TensorRT's own code, not because of the arguments: rerun the printed command to reproduce it, try another TensorRT version, and report it to NVIDIA with build.log.`
  if (what && /bad_alloc/.test(what)) hint = `std::bad_alloc: the machine ran out of host memory; free memory, lower the max shapes (--batch/--seq) or build on a bigger machine. ${hint}`
  return { class: 'crash', cause, hint }
}

// Flags TensorRT removed; the hint says what replaced them.
const REMOVED_IN_10: Record<string, string> = {
  '--workspace': '--workspace was removed in TensorRT 10: the workspace is --memPoolSize=workspace:<N>M (what modelforge build --workspace passes).',
  '--explicitBatch': '--explicitBatch was removed in TensorRT 10: every network is explicit-batch, drop the flag.',
  '--maxBatch': '--maxBatch was removed in TensorRT 10: give the batch range with --minShapes/--optShapes/--maxShapes (modelforge build --batch).',
}
const PRECISION_FLAGS = new Set(['--fp16', '--bf16', '--int8', '--fp8', '--int4', '--best', '--calib', '--precisionConstraints', '--layerPrecisions', '--layerOutputTypes'])

function unknownOption(log: Log, e: FailureEvidence): Draft | undefined {
  const found = log.errors.map((l) => /^Unknown option: (\S+)(?: (.*))?$/.exec(l.text)).filter((m): m is RegExpExecArray => m !== null)
  if (found.length === 0) return undefined
  const keys = found.map((m) => m[1])
  const spaced = keys.filter((k) => !k.startsWith('-'))
  const options = keys.filter((k) => k.startsWith('-'))
  const parts: string[] = []
  if (options.length > 0) parts.push(`${trt(e.version)} trtexec does not know the option${options.length > 1 ? 's' : ''} ${options.join(', ')}`)
  if (spaced.length > 0) parts.push(`${spaced.map((k) => `"${k}"`).join(', ')} reached trtexec as an option of its own (a value passed after a space instead of after "=")`)
  const hints: string[] = []
  for (const k of options) {
    if (REMOVED_IN_10[k] && (e.version?.major ?? 10) >= 10) hints.push(REMOVED_IN_10[k])
    else if (PRECISION_FLAGS.has(k) && (e.version?.major ?? 0) >= 11)
      hints.push(`TensorRT 11 removed ${k}: networks are strongly typed, so build from an fp16 or Q/DQ model (modelforge quantize).`)
  }
  if (spaced.length > 0) hints.push('Pass every value as --flag=value: trtexec splits an argument at "=" only.')
  hints.push(`Run \`trtexec --help\` for the options this version knows; modelforge picks its flags by the version trtexec reports, so an unknown option comes from flags added by hand or a trtexec that is not the version it says.`)
  return { class: 'unknown-option', cause: `${parts.join('; ')}.`, hint: hints.join(' ') }
}

// Messages trtexec prints when it cannot use an option's value (std::invalid_argument from its parsers).
const INVALID_VALUE = [
  /^Error parsing ".*": .*/,
  /invalid unit specifier/,
  /^Unknown (?!option:)[\w .-]+: .*/,
  /^Negative memory pool size/,
  /^Invalid usage, .*/,
  /without --profile are not allowed/,
  /failed to parse (?:min|opt|max)?Shapes|conversion failure/i,
  /^(stoi|stof|stol|stoll|stoul|stod)$/,
  /^Model missing or format not recognized/,
  /^Incompatible load and save engine options selected/,
]

function invalidValue(log: Log): Draft | undefined {
  for (const re of INVALID_VALUE) {
    const message = log.errors.map((l) => l.text.replace(/^Uncaught exception detected: /, '')).find((t) => re.test(t))
    if (message === undefined) continue
    const cause = /^sto\w+$/.test(message)
      ? `trtexec refused an option value: a number was expected (std::${message} failed).`
      : `trtexec refused an option value: ${message}`
    return {
      class: 'invalid-value',
      cause: sentence(cause),
      hint: 'Fix the value named above; `trtexec --help` shows the syntax this version accepts (sizes end in B, K, M or G, shapes are name:AxBxC, every value follows "=").',
    }
  }
  return undefined
}

// What CUDA says when there is no usable GPU or driver (cudaErrorNoDevice 100, InsufficientDriver 35,
// StubLibrary 34, InitializationError 3, and the driver-combination errors 803/804), by text or number.
const NO_GPU_CUDA = /no CUDA-capable device|driver version is insufficient|insufficient driver|forward compatibility was attempted|unsupported display driver|stub library|initialization error|no kernel image|^(?:3|34|35|100|803|804)$/i
const OOM_CUDA = /out of memory|^2$/i

/** A CUDA failure's message: `Cuda failure at common.h:123: <msg>`, `Cuda failure: 35`, `Cuda Runtime (<msg>)`. */
function cudaFailure(log: Log): string | undefined {
  for (const line of log.lines) {
    const m = /^(?:\[TRT\] )?Cuda failure(?: at \S+?:\d+)?:\s*(.*)$/i.exec(line.text) ?? /Error Code \d+: Cuda (?:Runtime|Driver) \((.*)\)/.exec(line.text)
    if (m) return m[1].trim()
  }
  return undefined
}

function noGpu(log: Log): Draft | undefined {
  let cause: string | undefined
  const device = log.any(/Cannot find device ID (\d+)!/)
  const cuda = cudaFailure(log)
  const init = log.any(/CUDA initialization failure with error:? (\d+)/)
  if (log.any(/Cannot find any available devices \(GPUs\)!/)) cause = 'trtexec found no CUDA GPU ("Cannot find any available devices (GPUs)!").'
  else if (device) cause = `There is no GPU with device ID ${device[1]} ("Cannot find device ID ${device[1]}!").`
  else if (cuda && NO_GPU_CUDA.test(cuda)) cause = `CUDA found no usable GPU or driver: ${cuda}.`
  else if (init) cause = `CUDA could not be initialized (error ${init[1]}): no usable GPU or driver.`
  return cause ? { class: 'no-gpu', cause, hint: CHECK_GPU } : undefined
}

function engineIncompatible(log: Log): Draft | undefined {
  const REBUILD = 'Rebuild the engine here (modelforge build) with this TensorRT on this GPU: a plan runs only with the TensorRT version and the GPU it was built with (unless built version- or hardware-compatible).'
  const version = log.any(/not compatible with this version of TensorRT, expecting library version (\S+?),? got (\S+?),? please rebuild/)
  if (version) return { class: 'engine-incompatible', cause: `The engine was built by another TensorRT version (this library is ${version[1]}, the plan was built by ${version[2]}).`, hint: REBUILD }
  const device = log.any(/generated on an incompatible device, expecting compute (\S+?),? got compute (\S+?),? please rebuild/)
  if (device)
    return { class: 'engine-incompatible', cause: `The engine was built for a GPU of compute capability ${device[2]}; this GPU is ${device[1]}.`, hint: REBUILD }
  const tag = log.error(/Version tag does not match.*?Current Version: (\d+), Serialized Engine Version: (\d+)/)
  if (tag) return { class: 'engine-incompatible', cause: `The engine was serialized by another TensorRT version (plan format ${tag[2]}, this TensorRT reads ${tag[1]}).`, hint: REBUILD }
  if (log.error(/Magic tag does not match|magicTag/i))
    return { class: 'engine-incompatible', cause: 'The engine file is not a TensorRT plan (its magic tag does not match).', hint: `Point --loadEngine at a plan trtexec wrote (--saveEngine). ${REBUILD}` }
  return undefined
}

function inputMismatch(log: Log): Draft | undefined {
  const HINT = 'Check the inputs with `modelforge inspect <model.onnx>`: shapes and --loadInputs must name the model\'s inputs, a static model takes no shapes, inference shapes lie inside the build profile, and an input file holds exactly the input\'s bytes (raw little-endian, its dtype).'
  let cause: string | undefined
  let m: RegExpExecArray | undefined
  if (log.error(/Static model does not take explicit shapes/))
    cause = 'The model has static shapes but shapes were given (--shapes or --minShapes/--optShapes/--maxShapes); a static model takes its shapes from the model.'
  else if ((m = log.error(/Cannot find input tensor with name "(.*?)" in the (network inputs|engine bindings)/)))
    cause = `There is no input named "${m[1]}" in the ${m[2] === 'network inputs' ? 'model' : 'engine'}.`
  else if ((m = log.error(/Unexpected file size for input file: (.*?)\. Note: Input binding size is: (\d+) bytes but the file size is (\d+) bytes/)))
    cause = `The input file ${m[1]} holds ${m[3]} bytes but the input needs ${m[2]}.`
  else if ((m = log.error(/Cannot open file (.*?)!/))) cause = `trtexec could not open the input file ${m[1]}.`
  else if (log.error(/Invalid tensor names found in --loadInputs flag/)) cause = '--loadInputs names a tensor that is not an input of the engine.'
  else if (log.error(/does not satisfy any optimization profile/)) cause = 'An inference shape lies outside the optimization profile the engine was built with.'
  return cause ? { class: 'input-mismatch', cause, hint: HINT } : undefined
}

function unsupportedOp(log: Log, e: FailureEvidence): Draft | undefined {
  if (!log.error(/Plugin not found|UNSUPPORTED_NODE|importFallbackPluginImporter|No importer registered for op/)) return undefined
  const ref = nodeRef(log)
  // The parser logs its plugin search at [I]/[V] before the error; the last one is the op it failed on.
  ref.op ??= log.lastAny(/No importer registered for op: ([^\s.]+)/, ['I', 'V'])?.[1] ?? log.lastAny(/Searching for plugin: ([^,\s]+)/, ['I', 'V'])?.[1]
  const op = ref.op
  const where = ref.node ? ` (node ${ref.node})` : ref.number ? ` (node number ${ref.number})` : ''
  const cause = op
    ? `${trt(e.version)} has no importer and no plugin for the ONNX operator ${op}${where}.`
    : `TensorRT's ONNX parser met an operator it has no importer and no plugin for${where}.`
  const name = op ?? 'the operator'
  const custom = ref.domain ? `${name} is a custom operator (domain ${ref.domain}): TensorRT runs it only through a plugin. ` : ''
  const hint = `${custom}Try a TensorRT version whose ONNX parser supports ${name} (onnx-tensorrt's operators.md lists them), load a plugin that implements it (trtexec --staticPlugins), or replace ${name} at export (another opset, or standard operators that compute the same).`
  return { class: 'unsupported-op', cause, hint, ...(op ? { op } : {}), ...(ref.node ? { node: ref.node } : {}) }
}

const PARSE_CHAIN = /^Failed to parse onnx file|^Parsing model failed|^Failed to create engine from model|^Engine set up failed|--- (Begin|End) node ---|ERROR: .* In function /

function onnxParse(log: Log): Draft | undefined {
  if (!log.error(/Failed to parse onnx file|Parsing model failed|While parsing node number|ModelImporter\.cpp|INVALID_NODE|INVALID_GRAPH|In function parse(?:Graph|Node|FromFile)|Input file cannot be found/))
    return undefined
  const HINT = 'Look at that node with `modelforge inspect <model.onnx>`; re-export the model (another opset, constant folding, static shapes where it can) or try a newer TensorRT, whose parser supports more.'
  const missing = log.error(/Input file cannot be found, or is not a regular file: (.*)$/)
  if (missing)
    return { class: 'onnx-parse', cause: `The ONNX file cannot be found, or is not a regular file: ${missing[1].trim()}.`, hint: 'Pass the path of an existing .onnx file (with its external data files beside it).' }
  const ref = nodeRef(log)
  // The most specific message is the first one outside trtexec's own failure chain.
  const first = log.errors.find((l) => !PARSE_CHAIN.test(l.text.replace(/^\[TRT\] (?:\S+:\d+: )?/, '')) && !/While parsing node number/.test(l.text))
  const detail = first ? detailOf(first.text) : undefined
  const at = nodeText(ref)
  const cause = `TensorRT's ONNX parser failed${at ? ` at ${at}` : ''}${detail ? `: ${detail}` : ''}`
  return { class: 'onnx-parse', cause: sentence(cause), hint: HINT, ...(ref.op ? { op: ref.op } : {}), ...(ref.node ? { node: ref.node } : {}) }
}

/** `Could not find any implementation for node X.` (often inside `Internal Error (...)`). */
function noImplementationNode(log: Log): { node: string; workspace: boolean } | undefined {
  const m = log.error(/Could not find any implementation for node (.+)$/)
  if (!m) return undefined
  let rest = m[1]
  const workspace = / due to insufficient workspace/.test(rest)
  rest = rest.replace(/ due to .*$/, '')
  if (rest.endsWith(')') && m.input.includes('Internal Error (')) rest = rest.slice(0, -1)
  return { node: rest.replace(/\.$/, '').trim(), workspace }
}

function outOfMemory(log: Log): Draft | undefined {
  const LOWER = 'Lower the workspace (modelforge build --workspace) and the max shapes (--batch/--seq max), free the GPU of other jobs (nvidia-smi), or build on a GPU with more memory.'
  const noImpl = noImplementationNode(log)
  if (noImpl?.workspace)
    return {
      class: 'out-of-memory',
      cause: `TensorRT found no implementation for node ${noImpl.node} that fits in the workspace.`,
      hint: 'Raise the workspace limit (modelforge build --workspace) or lower the max shapes (--batch/--seq max); a GPU with more memory allows both.',
      node: noImpl.node,
    }
  const cuda = cudaFailure(log)
  const host = log.error(/std::bad_alloc/) ?? log.any(/bad_alloc/, ['raw'])
  if (host) return { class: 'out-of-memory', cause: 'trtexec ran out of host memory (std::bad_alloc).', hint: `Free host memory or build on a machine with more; lower the max shapes (--batch/--seq max).` }
  const gpu = log.error(/OutOfMemory|out of memory|could not be allocated|Failed to allocate|allocation failed|insufficient (?:device )?memory/i)
  if (gpu || (cuda && OOM_CUDA.test(cuda))) {
    const bytes = log.any(/Requested amount of GPU memory \((\d+) bytes\) could not be allocated/)?.[1]
    return { class: 'out-of-memory', cause: `The run ran out of GPU memory${bytes ? ` (TensorRT asked for ${bytes} bytes)` : ''} ${log.phase()}.`, hint: LOWER }
  }
  return undefined
}

function noImplementation(log: Log): Draft | undefined {
  const found = noImplementationNode(log)
  if (!found) return undefined
  return {
    class: 'no-implementation',
    cause: `TensorRT's builder found no implementation (kernel) for node ${found.node}.`,
    hint: 'Try another precision (fp32 rather than fp16/int8/best), a larger workspace (--workspace) or another --builderOptimizationLevel, or another TensorRT version; if it stays, change that part of the model at export.',
    node: found.node,
  }
}

function cuda(log: Log): Draft | undefined {
  const message = cudaFailure(log)
  if (!message) return undefined
  return {
    class: 'cuda',
    cause: `A CUDA call failed: ${message}.`,
    hint: `${CHECK_GPU} An illegal memory access or a launch failure inside TensorRT is a TensorRT bug: rerun the printed command, try another TensorRT version, report it with build.log.`,
  }
}

/** Memory TensorRT could not get, when nothing more specific explains a failed run. */
function allocationWarning(log: Log): Draft | undefined {
  const m = log.any(/Requested amount of GPU memory \((\d+) bytes\) could not be allocated/, ['W', 'E'])
  if (!m) return undefined
  return {
    class: 'out-of-memory',
    cause: `The run failed ${log.phase()} after TensorRT could not allocate GPU memory (${m[1]} bytes).`,
    hint: 'Lower the workspace (modelforge build --workspace) and the max shapes (--batch/--seq max), free the GPU of other jobs (nvidia-smi), or build on a GPU with more memory.',
  }
}

function unknown(log: Log, e: FailureEvidence): Draft {
  const hint = 'Read build.log (the whole trtexec output) and rerun the printed command by hand with --verbose to see what TensorRT did last.'
  const last = log.errors.at(-1)?.text
  const said = last ? `; its last error: ${last}` : ', without an error message'
  if (e.createdEngineMiB === 0)
    return {
      class: 'unknown',
      cause: `The build produced an empty engine (Created engine with size: 0 MiB): TensorRT's builder failed${said}.`,
      hint: `${trt(e.version)} writes the engine while it builds, so a failed build leaves 0 MiB and fails again when the engine is loaded; the builder's own error is earlier in build.log. ${hint}`,
    }
  let cause: string
  if (e.status === 'passed') cause = `trtexec printed PASSED but exited with code ${e.exitCode ?? '?'}${said}.`
  else if (e.status === 'failed') cause = `trtexec reported FAILED ${log.phase()}${said}.`
  else if (e.exitCode !== undefined) cause = `trtexec exited with code ${e.exitCode} ${log.phase()}, without its closing PASSED/FAILED line${said}.`
  else cause = `The log ends ${log.phase()} without trtexec's closing PASSED/FAILED line (cut short, or trtexec died)${said}.`
  return { class: 'unknown', cause, hint }
}

const RULES: Rule[] = [crash, unknownOption, invalidValue, noGpu, engineIncompatible, inputMismatch, unsupportedOp, onnxParse, outOfMemory, noImplementation, cuda, allocationWarning]

/** The failure of a run that did not pass. */
export function classifyFailure(e: FailureEvidence): TrtexecFailure {
  const log = new Log(e.lines)
  let draft: Draft | undefined
  for (const rule of RULES) {
    draft = rule(log, e)
    if (draft) break
  }
  draft ??= unknown(log, e)
  return { ...draft, lastErrors: log.lastErrors() }
}
