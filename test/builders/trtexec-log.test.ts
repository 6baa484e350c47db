import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { parseTrtexecLog, type TrtexecExit } from '../../src/builders/trtexec-log.js'
import type { FailureClass, ParsedLog } from '../../src/builders/types.js'

const LOGS = fileURLToPath(new URL('../../fixtures/trtexec-logs', import.meta.url))

/** Every trtexec log in the fixtures (each folder's files but the expectations and the markdown source). */
function fixtureLogs(): string[] {
  return readdirSync(LOGS, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .flatMap((d) => readdirSync(join(LOGS, d.name)).filter((f) => !f.endsWith('.expected.json') && !f.endsWith('.md')).map((f) => `${d.name}/${f}`))
    .sort()
}

interface Golden {
  exit: TrtexecExit
  parsed: Omit<ParsedLog, 'failure'> & { failure?: Partial<ParsedLog['failure']> }
}

const read = (rel: string) => readFileSync(join(LOGS, rel), 'utf8')

describe('parseTrtexecLog on the real logs of TensorRT 8.0 to 10.16 (fixtures/trtexec-logs)', () => {
  const logs = fixtureLogs()

  it('has the logs of every folder of the material', () => {
    expect(logs).toHaveLength(14)
    expect(new Set(logs.map((rel) => rel.split('/')[0]))).toEqual(
      new Set(['cookbook-trt10.16.1', 'cookbook-trt8.0.3', 'cookbook-trt8.2.3-failed', 'cookbook-trt8.2.4-parse-error', 'cookbook-trt8.4.1', 'cookbook-trt8.6.0']),
    )
  })

  it.each(logs)('%s reads into the fields it holds', (rel) => {
    const golden = JSON.parse(read(`${rel}.expected.json`)) as Golden
    const { failure, ...rest } = parseTrtexecLog(read(rel), golden.exit)
    const { failure: expectedFailure, ...expected } = golden.parsed
    expect(rest).toEqual(expected)
    if (!expectedFailure) return expect(failure).toBeUndefined()
    // The class, op, node and error lines are checked values; cause and hint are sentences of ours.
    expect(failure).toMatchObject(expectedFailure)
    expect(failure!.cause).toMatch(/^[A-Zt].*\.$/)
    expect(failure!.hint.length).toBeGreaterThan(40)
  })

  it('the 8.2.4 parse error names the node, its operator and what TensorRT said about it', () => {
    const p = parseTrtexecLog(read('cookbook-trt8.2.4-parse-error/result.log'), { exitCode: 1 })
    expect(p.failure?.cause).toBe(
      "TensorRT's ONNX parser failed at node Pad_13 (Pad): Reshape_3: IShuffleLayer applied to shape tensor must have 0 or 1 reshape dimensions: dimensions were [-1,2].",
    )
    expect(p.failure?.hint).toContain('modelforge inspect')
  })

  it('the 8.2.4 log is the trtexec part of the markdown the cookbook committed, unchanged', () => {
    const markdown = read('cookbook-trt8.2.4-parse-error/result.md').split('\n')
    const start = markdown.indexOf('# trtexec 中的报错信息') + 1
    const end = markdown.indexOf('```', start)
    expect(read('cookbook-trt8.2.4-parse-error/result.log')).toBe(`${markdown.slice(start, end).join('\n')}\n`)
  })

  it('8.2.3 printed FAILED with no error line: unknown, saying how far it got', () => {
    const p = parseTrtexecLog(read('cookbook-trt8.2.3-failed/result-FP16.txt'))
    expect(p.failure?.class).toBe('unknown')
    expect(p.failure?.cause).toBe('trtexec reported FAILED after parsing the model (setting up or building the engine), without an error message.')
  })

  it('out-of-memory warnings while TensorRT times tactics are not a failure when the build passes (10.16 result-02)', () => {
    const p = parseTrtexecLog(read('cookbook-trt10.16.1/result-02.log'), { exitCode: 0 })
    expect(p.warnings.filter((w) => w.includes('insufficient memory'))).toHaveLength(4)
    expect(p.status).toBe('passed')
    expect(p.failure).toBeUndefined()
  })

  it('10.13+ prints the engine size before "Engine built in"; both are read', () => {
    const log = read('cookbook-trt10.16.1/result-01.log')
    expect(log.indexOf('Created engine with size')).toBeLessThan(log.indexOf('Engine built in'))
    expect(parseTrtexecLog(log)).toMatchObject({ engineSizeMiB: 12.5744, buildTimeS: 8.09138 })
  })

  it('the verbose explanation of the metrics (8.0.3, [V] lines after the summary) does not overwrite the summary', () => {
    const log = read('cookbook-trt8.0.3/result-FP16.txt')
    expect(log).toContain('[V] Total Host Walltime: the host walltime')
    expect(parseTrtexecLog(log).perf?.totalHostWalltimeS).toBe(3.00109)
  })

  it('a passed log with a non-zero exit is still a failure (trtexec died after its PASSED line)', () => {
    const p = parseTrtexecLog(read('cookbook-trt8.6.0/result-02.log'), { exitCode: 1 })
    expect(p.status).toBe('passed')
    expect(p.failure).toMatchObject({ class: 'unknown', cause: 'trtexec printed PASSED but exited with code 1, without an error message.' })
  })
})

// Synthetic logs for the failure classes the real logs above do not show, made of the lines trt-anchors.md
// quotes from TensorRT's source and from real logs (1.1, 1.3, 1.8). `[X] ` lines get a timestamp, as
// trtexec's logger prints them; other lines are written as they are (banners, raw stderr).
const BANNER = (kind: string, args = '--onnx=model.onnx', v = 'v101601] [b11') => `&&&& ${kind} TensorRT.trtexec [TensorRT ${v}] # trtexec ${args}`
function log(...lines: string[]): string {
  return `${lines.map((l) => (/^\[[FEWIV]\] /.test(l) ? `[07/07/2026-02:10:45] ${l}` : l)).join('\n')}\n`
}
const FAILED_CHAIN = ['[E] Engine could not be created from network', '[E] Building engine failed', '[E] Failed to create engine from model or file.', '[E] Engine set up failed', BANNER('FAILED')]
const PARSE_START = ['[I] TensorRT version: 10.16.1', '[I] Start parsing network model.']

interface Case {
  name: string
  log: string
  exit: TrtexecExit
  expect: Partial<NonNullable<ParsedLog['failure']>>
  cause: RegExp
  hint: RegExp
}

// Keyed by class so that every class has a case (the type checker refuses a missing one).
const CASES: Record<FailureClass, Case[]> = {
  'unknown-option': [
    {
      name: '--workspace on TensorRT 10 (removed in 10.0)',
      log: log(BANNER('RUNNING', '--onnx=model.onnx --workspace=1024'), '=== Model Options ===', '  --onnx=<file>               ONNX model', '[E] Unknown option: --workspace 1024', BANNER('FAILED', '--onnx=model.onnx --workspace=1024')),
      exit: { exitCode: 1 },
      expect: { lastErrors: ['Unknown option: --workspace 1024'] },
      cause: /^TensorRT 10\.16\.1 trtexec does not know the option --workspace\.$/,
      hint: /--memPoolSize=workspace:<N>M/,
    },
    {
      name: 'a value after a space becomes an option of its own',
      log: log(BANNER('RUNNING', '--onnx model.onnx'), '[E] Unknown option: model.onnx ', BANNER('FAILED', '--onnx model.onnx')),
      exit: { exitCode: 1 },
      expect: {},
      cause: /"model\.onnx" reached trtexec as an option of its own/,
      hint: /--flag=value/,
    },
    {
      name: '--fp16 on TensorRT 11, which removed the precision flags',
      log: log(BANNER('RUNNING', '--onnx=model.onnx --fp16', 'v110100] [b3'), '[E] Unknown option: --fp16 ', BANNER('FAILED', '--onnx=model.onnx --fp16', 'v110100] [b3')),
      exit: { exitCode: 1 },
      expect: {},
      cause: /TensorRT 11\.1\.0 trtexec does not know the option --fp16/,
      hint: /modelforge quantize/,
    },
  ],
  'invalid-value': [
    {
      name: 'a size with a unit trtexec does not know',
      log: log(
        BANNER('RUNNING', '--onnx=model.onnx --memPoolSize=workspace:1024x'),
        `[E] Error parsing "workspace:1024x": invalid unit specifier 'x'. Valid base-2 unit suffixes include: B (Bytes), K (Kibibytes), M (Mebibytes), G (Gibibytes).`,
        BANNER('FAILED', '--onnx=model.onnx --memPoolSize=workspace:1024x'),
      ),
      exit: { exitCode: 1 },
      expect: {},
      cause: /^trtexec refused an option value: Error parsing "workspace:1024x": invalid unit specifier 'x'\./,
      hint: /trtexec --help/,
    },
    {
      name: 'std::stoi on a value that is not a number',
      log: log(BANNER('RUNNING', '--onnx=model.onnx --iterations=ten'), '[E] stoi', BANNER('FAILED', '--onnx=model.onnx --iterations=ten')),
      exit: { exitCode: 1 },
      expect: { lastErrors: ['stoi'] },
      cause: /a number was expected \(std::stoi failed\)/,
      hint: /syntax/,
    },
  ],
  'onnx-parse': [
    {
      name: 'the 10.16.1 parse failure chain of trt-anchors.md 1.8',
      log: log(
        BANNER('RUNNING'),
        ...PARSE_START,
        '[E] Error[4]: ITensor::getDimensions: Error Code 4: Shape Error (broadcast dimensions must be conformable)',
        '[E] [TRT] ModelImporter.cpp:138: While parsing node number 103 [Where -> "/sam_prompt_encoder/Where_6_output_0"]:',
        '[E] [TRT] ModelImporter.cpp:140: --- Begin node ---',
        '[E] [TRT] ModelImporter.cpp:141: --- End node ---',
        '[E] [TRT] ModelImporter.cpp:149: ERROR: ModelImporter.cpp:506 In function parseNode:',
        '[E] Failed to parse onnx file',
        '[I] Finished parsing network model. Parse time: 1.20455',
        '[E] Parsing model failed',
        '[E] Failed to create engine from model or file.',
        '[E] Engine set up failed',
        BANNER('FAILED'),
      ),
      exit: { exitCode: 1 },
      expect: { op: 'Where', lastErrors: expect.arrayContaining(['Failed to parse onnx file', 'Engine set up failed']) as unknown as string[] },
      cause: /^TensorRT's ONNX parser failed at node number 103 \(Where\): broadcast dimensions must be conformable\.$/,
      hint: /re-export/,
    },
    {
      name: 'a missing ONNX file (10.13)',
      log: log(
        BANNER('RUNNING', '--onnx=models/x.onnx', 'v101300] [b35'),
        ...PARSE_START,
        '[E] Error[3]: In node -1 with name:  and operator:  (parseFromFile): INVALID_VALUE: Assertion failed: stat(onnxModelFile, &sb) == 0 && S_ISREG(sb.st_mode): Input file cannot be found, or is not a regular file: models/x.onnx',
        '[E] Failed to parse onnx file',
        '[E] Parsing model failed',
        '[E] Failed to create engine from model or file.',
        '[E] Engine set up failed',
        BANNER('FAILED', '--onnx=models/x.onnx', 'v101300] [b35'),
      ),
      exit: { exitCode: 1 },
      expect: {},
      cause: /^The ONNX file cannot be found, or is not a regular file: models\/x\.onnx\.$/,
      hint: /existing \.onnx file/,
    },
  ],
  'unsupported-op': [
    {
      name: 'an operator with no importer and no plugin (10.x)',
      log: log(
        BANNER('RUNNING'),
        ...PARSE_START,
        '[I] [TRT] No importer registered for op: GridSample. Attempting to import as plugin.',
        '[I] [TRT] Searching for plugin: GridSample, plugin_version: 1, plugin_namespace: ',
        '[E] [TRT] ModelImporter.cpp:138: While parsing node number 7 [GridSample -> "/grid/GridSample_output_0"]:',
        '[E] [TRT] ModelImporter.cpp:140: --- Begin node ---',
        '[E] [TRT] ModelImporter.cpp:141: --- End node ---',
        '[E] [TRT] ModelImporter.cpp:149: ERROR: onnxOpImporters.cpp:6367 In function importFallbackPluginImporter:',
        '[8] Assertion failed: creator && "Plugin not found, are the plugin name, version, and namespace correct?"',
        '[E] Failed to parse onnx file',
        '[E] Parsing model failed',
        '[E] Failed to create engine from model or file.',
        '[E] Engine set up failed',
        BANNER('FAILED'),
      ),
      exit: { exitCode: 1 },
      expect: { op: 'GridSample' },
      cause: /^TensorRT 10\.16\.1 has no importer and no plugin for the ONNX operator GridSample \(node number 7\)\.$/,
      hint: /TensorRT version whose ONNX parser supports GridSample.*plugin.*replace GridSample at export/,
    },
    {
      name: 'a custom-domain operator, with the node dump of 8.x',
      log: log(
        BANNER('RUNNING', '--onnx=model.onnx', 'v8601'),
        '[I] Start parsing network model.',
        '[I] [TRT] No importer registered for op: FancyRelu. Attempting to import as plugin.',
        '[I] [TRT] Searching for plugin: FancyRelu, plugin_version: 1, plugin_namespace: ',
        '[E] [TRT] ModelImporter.cpp:771: While parsing node number 0 [FancyRelu -> "y"]:',
        '[E] [TRT] ModelImporter.cpp:772: --- Begin node ---',
        '[E] [TRT] ModelImporter.cpp:773: input: "x"',
        'output: "y"',
        'name: "fancy_0"',
        'op_type: "FancyRelu"',
        'domain: "com.example"',
        '[E] [TRT] ModelImporter.cpp:774: --- End node ---',
        '[E] [TRT] ModelImporter.cpp:777: ERROR: builtin_op_importers.cpp:5404 In function importFallbackPluginImporter:',
        '[8] Assertion failed: creator && "Plugin not found, are the plugin name, version, and namespace correct?"',
        '[E] Failed to parse onnx file',
        '[E] Parsing model failed',
        '[E] Failed to create engine from model or file.',
        '[E] Engine set up failed',
        BANNER('FAILED', '--onnx=model.onnx', 'v8601'),
      ),
      exit: { exitCode: 1 },
      expect: { op: 'FancyRelu', node: 'fancy_0' },
      cause: /^TensorRT 8\.6\.1 has no importer and no plugin for the ONNX operator FancyRelu \(node fancy_0\)\.$/,
      hint: /^FancyRelu is a custom operator \(domain com\.example\): TensorRT runs it only through a plugin\./,
    },
  ],
  'no-implementation': [
    {
      name: 'no kernel for a fused node',
      log: log(
        BANNER('RUNNING', '--onnx=model.onnx --fp16'),
        ...PARSE_START,
        '[I] Finished parsing network model. Parse time: 0.02',
        '[E] Error[10]: IBuilder::buildSerializedNetwork: Error Code 10: Internal Error (Could not find any implementation for node {ForeignNode[/encoder/Mul.../encoder/Add_2]}.)',
        ...FAILED_CHAIN,
      ),
      exit: { exitCode: 1 },
      expect: { node: '{ForeignNode[/encoder/Mul.../encoder/Add_2]}' },
      cause: /^TensorRT's builder found no implementation \(kernel\) for node \{ForeignNode\[\/encoder\/Mul\.\.\.\/encoder\/Add_2\]\}\.$/,
      hint: /another precision/,
    },
  ],
  'out-of-memory': [
    {
      name: 'the build runs out of GPU memory and fails',
      log: log(
        BANNER('RUNNING'),
        ...PARSE_START,
        '[I] Finished parsing network model. Parse time: 0.02',
        '[E] Error[2]: [virtualMemoryBuffer.cpp::resizePhysical::145] Error Code 2: OutOfMemory (no further information)',
        '[W] [TRT] Requested amount of GPU memory (8589934592 bytes) could not be allocated. There may not be enough free memory for allocation to succeed.',
        ...FAILED_CHAIN,
      ),
      exit: { exitCode: 1 },
      expect: {},
      cause: /^The run ran out of GPU memory \(TensorRT asked for 8589934592 bytes\) after parsing the model/,
      hint: /--workspace.*bigger|more memory/,
    },
    {
      name: 'no implementation that fits the workspace',
      log: log(
        BANNER('RUNNING'),
        ...PARSE_START,
        '[E] Error[10]: [optimizer.cpp::computeCosts::3728] Error Code 10: Internal Error (Could not find any implementation for node /conv1/Conv due to insufficient workspace. See verbose log for requested sizes.)',
        ...FAILED_CHAIN,
      ),
      exit: { exitCode: 1 },
      expect: { node: '/conv1/Conv' },
      cause: /^TensorRT found no implementation for node \/conv1\/Conv that fits in the workspace\.$/,
      hint: /Raise the workspace limit/,
    },
  ],
  'no-gpu': [
    {
      name: 'no CUDA device: no FAILED line (trt-anchors.md 1.8)',
      log: log(BANNER('RUNNING'), '[I] === Device Information ===', '[I] Cannot find any available devices (GPUs)!'),
      exit: { exitCode: 1 },
      expect: { lastErrors: ['Cannot find any available devices (GPUs)!'] },
      cause: /^trtexec found no CUDA GPU/,
      hint: /nvidia-smi.*driver/,
    },
    {
      name: 'a driver older than the CUDA runtime, from the CUDA check',
      log: log(BANNER('RUNNING'), '[I] === Device Information ===', 'Cuda failure at sampleDevice.h:37: CUDA driver version is insufficient for CUDA runtime version'),
      exit: { exitCode: 1 },
      expect: { lastErrors: ['Cuda failure at sampleDevice.h:37: CUDA driver version is insufficient for CUDA runtime version'] },
      cause: /^CUDA found no usable GPU or driver: CUDA driver version is insufficient for CUDA runtime version\.$/,
      hint: /nvidia-smi/,
    },
  ],
  cuda: [
    {
      name: 'another CUDA failure during inference',
      log: log(BANNER('RUNNING', '--loadEngine=e.plan'), '[I] Starting inference', 'Cuda failure at sampleInference.cpp:1105: an illegal memory access was encountered'),
      exit: { exitCode: 1 },
      expect: {},
      cause: /^A CUDA call failed: an illegal memory access was encountered\.$/,
      hint: /TensorRT bug/,
    },
  ],
  'engine-incompatible': [
    {
      name: 'a plan built on a GPU of another compute capability',
      log: log(
        BANNER('RUNNING', '--loadEngine=e.plan'),
        '[I] [TRT] Loaded engine size: 6 MiB',
        '[E] Error[6]: The engine plan file is generated on an incompatible device, expecting compute 8.6 got compute 7.5, please rebuild.',
        '[E] Error[4]: [runtime.cpp::deserializeCudaEngine::50] Error Code 4: Internal Error (Engine deserialization failed.)',
        '[E] Engine deserialization failed',
        '[E] Engine set up failed',
        BANNER('FAILED', '--loadEngine=e.plan'),
      ),
      exit: { exitCode: 1 },
      expect: {},
      cause: /^The engine was built for a GPU of compute capability 7\.5; this GPU is 8\.6\.$/,
      hint: /Rebuild the engine/,
    },
    {
      name: 'a plan of another TensorRT version',
      log: log(
        BANNER('RUNNING', '--loadEngine=e.plan', 'v8601'),
        '[E] Error[6]: The engine plan file is not compatible with this version of TensorRT, expecting library version 8.6.1.6 got 8.5.3.1, please rebuild.',
        '[E] Engine deserialization failed',
        BANNER('FAILED', '--loadEngine=e.plan', 'v8601'),
      ),
      exit: { exitCode: 1 },
      expect: {},
      cause: /this library is 8\.6\.1\.6, the plan was built by 8\.5\.3\.1/,
      hint: /Rebuild/,
    },
  ],
  'input-mismatch': [
    {
      name: 'an input file of the wrong size',
      log: log(
        BANNER('RUNNING', '--loadEngine=e.plan --loadInputs=x:x.bin'),
        '[E] Uncaught exception detected: Unexpected file size for input file: x.bin. Note: Input binding size is: 3136 bytes but the file size is 6272 bytes. Double check the size and datatype of the provided data.',
        BANNER('FAILED', '--loadEngine=e.plan --loadInputs=x:x.bin'),
      ),
      exit: { exitCode: 1 },
      expect: {},
      cause: /^The input file x\.bin holds 6272 bytes but the input needs 3136\.$/,
      hint: /raw little-endian/,
    },
    {
      name: 'shapes for a static model',
      log: log(
        BANNER('RUNNING', '--onnx=model.onnx --shapes=x:1x3'),
        '[E] Static model does not take explicit shapes since the shape of inference tensors will be determined by the model itself',
        '[E] Network And Config setup failed',
        ...FAILED_CHAIN.slice(1),
      ),
      exit: { exitCode: 1 },
      expect: {},
      cause: /^The model has static shapes but shapes were given/,
      hint: /static model takes no shapes/,
    },
    {
      name: 'a shape for an input the model does not have',
      log: log(
        BANNER('RUNNING', '--onnx=model.onnx --minShapes=ids:1x8'),
        '[E] Cannot find input tensor with name "ids" in the network inputs! Please make sure the input tensor names are correct.',
        '[E] Network And Config setup failed',
        ...FAILED_CHAIN.slice(1),
      ),
      exit: { exitCode: 1 },
      expect: {},
      cause: /^There is no input named "ids" in the model\.$/,
      hint: /modelforge inspect/,
    },
  ],
  crash: [
    {
      name: 'an uncaught std::bad_alloc aborts trtexec',
      log: log(BANNER('RUNNING'), ...PARSE_START, "terminate called after throwing an instance of 'std::bad_alloc'", '  what():  std::bad_alloc'),
      exit: { exitCode: -1, signal: 'SIGABRT' },
      expect: { lastErrors: ["terminate called after throwing an instance of 'std::bad_alloc'", 'what():  std::bad_alloc'] },
      cause: /^trtexec was killed by SIGABRT while parsing the model, after an uncaught C\+\+ exception \(std::bad_alloc\)\.$/,
      hint: /host memory.*TensorRT's own code/,
    },
    {
      name: 'a segfault during inference, as a shell reports it (exit 139)',
      log: log(BANNER('RUNNING', '--loadEngine=e.plan'), '[I] Starting inference'),
      exit: { exitCode: 139 },
      expect: { lastErrors: [] },
      cause: /^trtexec was killed by SIGSEGV during inference\.$/,
      hint: /report it to NVIDIA/,
    },
    {
      name: 'killed from outside',
      log: log(BANNER('RUNNING'), ...PARSE_START),
      exit: { exitCode: -1, signal: 'SIGKILL' },
      expect: {},
      cause: /^trtexec was killed by SIGKILL while parsing the model\.$/,
      hint: /out-of-memory killer/,
    },
  ],
  unknown: [
    {
      name: 'an exit code with no message TensorRT explains',
      log: log(BANNER('RUNNING'), ...PARSE_START, '[I] Finished parsing network model. Parse time: 0.02', '[E] Assertion failure: nbBindings > 0'),
      exit: { exitCode: 1 },
      expect: { lastErrors: ['Assertion failure: nbBindings > 0'] },
      cause: /^trtexec exited with code 1 after parsing the model .*, without its closing PASSED\/FAILED line; its last error: Assertion failure: nbBindings > 0\.$/,
      hint: /build\.log/,
    },
    {
      // 10.13+ streams the plan to the file while building; when the build fails it reports 0 MiB and
      // fails again loading it (trt-anchors.md 1.8; the assertion's wording here is illustrative).
      name: 'an empty engine (0 MiB) from a failed build is not an incompatible engine',
      log: log(BANNER('RUNNING'), ...PARSE_START, '[I] Created engine with size: 0 MiB', '[I] Engine built in 1.2 sec.', '[E] Assertion failure: !engineBlob.empty() && "empty engine"'),
      exit: { exitCode: 1 },
      expect: {},
      cause: /^The build produced an empty engine \(Created engine with size: 0 MiB\)/,
      hint: /writes the engine while it builds/,
    },
  ],
}

describe('parseTrtexecLog classifies failures the way TensorRT reports them', () => {
  const cases = Object.entries(CASES).flatMap(([cls, list]) => list.map((c) => ({ cls: cls as FailureClass, ...c })))

  it.each(cases)('$cls: $name', ({ cls, log: text, exit, expect: fields, cause, hint }) => {
    const p = parseTrtexecLog(text, exit)
    expect(p.failure).toMatchObject({ class: cls, ...fields })
    expect(p.failure!.cause).toMatch(cause)
    expect(p.failure!.hint).toMatch(hint)
    expect(p.failure!.lastErrors.length).toBeLessThanOrEqual(8)
  })

  it('keeps at most the last 8 error lines, without timestamps and with [TRT]', () => {
    const errors = Array.from({ length: 12 }, (_, i) => `[E] [TRT] error ${i}`)
    const p = parseTrtexecLog(log(BANNER('RUNNING'), ...errors, BANNER('FAILED')), { exitCode: 1 })
    expect(p.failure?.lastErrors).toEqual(Array.from({ length: 8 }, (_, i) => `[TRT] error ${i + 4}`))
    expect(p.errors).toHaveLength(12)
  })

  it('an out-of-memory error during tactic timing is not a failure when the build passes', () => {
    const p = parseTrtexecLog(
      log(
        BANNER('RUNNING'),
        '[E] Error[2]: [virtualMemoryBuffer.cpp::resizePhysical::145] Error Code 2: OutOfMemory (no further information)',
        '[W] [TRT] Requested amount of GPU memory (8589934592 bytes) could not be allocated. There may not be enough free memory for allocation to succeed.',
        '[W] [TRT] Skipping tactic 3 due to insufficient memory on requested size of 8589934592 detected for tactic 0x0000000000000004.',
        '[I] Engine built in 10.7204 sec.',
        '[I] Created engine with size: 101.811 MiB',
        BANNER('PASSED'),
      ),
      { exitCode: 0 },
    )
    expect(p).toMatchObject({ status: 'passed', buildTimeS: 10.7204, engineSizeMiB: 101.811 })
    expect(p.errors).toEqual(['Error[2]: [virtualMemoryBuffer.cpp::resizePhysical::145] Error Code 2: OutOfMemory (no further information)'])
    expect(p.failure).toBeUndefined()
  })

  it('a log cut short, with no exit given, is a failure of its own: no closing line', () => {
    const p = parseTrtexecLog(log(BANNER('RUNNING'), ...PARSE_START))
    expect(p.status).toBe('unknown')
    expect(p.failure).toMatchObject({ class: 'unknown', cause: "The log ends while parsing the model without trtexec's closing PASSED/FAILED line (cut short, or trtexec died), without an error message." })
  })

  it('--help exits 0 with no closing line, and is not a failure', () => {
    const p = parseTrtexecLog(log(BANNER('RUNNING', '--help'), '=== Model Options ===', '  --onnx=<file>               ONNX model'), { exitCode: 0 })
    expect(p).toMatchObject({ status: 'unknown', commandLine: 'trtexec --help', version: { text: '10.16.1', build: 11 } })
    expect(p.failure).toBeUndefined()
  })

  it('reads `Loaded engine with size` of a --loadEngine run, and the version line of a log without banner', () => {
    const p = parseTrtexecLog(log('[I] TensorRT version: 10.9.0', '[I] Engine loaded in 0.1 sec.', '[I] Loaded engine with size: 101.811 MiB', '[I] [TRT] Loaded engine size: 101 MiB'))
    expect(p.version).toEqual({ major: 10, minor: 9, patch: 0, encoded: 100900, text: '10.9.0' })
    expect(p.engineSizeMiB).toBe(101.811)
    expect(p.commandLine).toBeUndefined()
  })
})

describe('parseTrtexecLog never throws', () => {
  const real = read('cookbook-trt10.16.1/result-01.log')
  const lines = real.split('\n')

  it('on the real log cut after every line: passed only once the closing line is in', () => {
    for (let n = 0; n <= lines.length; n++) {
      const prefix = lines.slice(0, n).join('\n')
      const p = parseTrtexecLog(prefix)
      const closed = prefix.includes('&&&& PASSED')
      expect(p.status).toBe(closed ? 'passed' : 'unknown')
      expect(p.failure === undefined).toBe(closed)
    }
  })

  it('on the real log cut in the middle of lines', () => {
    for (let at = 0; at < real.length; at += 997) expect(() => parseTrtexecLog(real.slice(0, at), { exitCode: 1 })).not.toThrow()
  })

  it('on garbage', () => {
    const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256)).toString('latin1')
    const odd = [
      '',
      '\n\n\r\n',
      bytes,
      '[E]',
      '[E] \n[W]\n[I] === Performance summary ===\n[I] Latency: min = inf ms, max = nan ms, mean = -nan ms, median = x ms\n[I] Throughput: qps',
      '&&&& PASSED TensorRT.trtexec [TensorRT v99999999999999999999999] # x',
      '&&&& FAILED TensorRT.trtexec [TensorRT v0] #',
      `[I] ${'x'.repeat(200_000)}`,
      '[E] Could not find any implementation for node ',
      '[E] Unknown option: ',
      '[I] Selected Device: \n[I] Compute Capability: nine\n[I] Device Global Memory: lots MiB',
    ]
    for (const text of odd) for (const exit of [{}, { exitCode: 1 }, { exitCode: 0 }, { signal: 'SIGSEGV' }, { exitCode: null, signal: null }]) {
      const p = parseTrtexecLog(text, exit)
      expect(['passed', 'failed', 'unknown']).toContain(p.status)
      expect(Array.isArray(p.warnings) && Array.isArray(p.errors)).toBe(true)
    }
    expect(() => parseTrtexecLog(undefined as unknown as string)).not.toThrow()
  })

  it('on a summary whose statistics are inf or nan: the statistic is left out, not made a number', () => {
    const p = parseTrtexecLog(log('[I] === Performance summary ===', '[I] Throughput: 0 qps', '[I] Latency: min = inf ms, max = inf ms, mean = nan ms, median = inf ms', '[I] Total Host Walltime: 0 s'))
    expect(p.perf).toEqual({ throughputQps: 0, totalHostWalltimeS: 0 })
  })
})
