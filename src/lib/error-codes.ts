/**
 * Every error code modelforge throws, each with its one exit code, what it means and what to do. This is
 * the contract scripts rely on: error classes accept only codes listed here with their class's exit code
 * (a type error otherwise), docs/errors.md is generated from this table (`npm run docs:errors`, checked by
 * test/lib/error-codes.test.ts), and a code thrown anywhere in src/ must be a key here.
 *
 * The exit-code rule (docs/architecture.md): bad user input that is not a file's content (flags, names,
 * paths of the wrong kind) is 2; a file whose content is broken or fails a check is 4. Reference and input
 * data given to validate are the user's arguments written down, so a wrong value there is 2 as well.
 * Operating-system failures are never 1: refused access 7, a path of the wrong kind 2, a missing path 6, an
 * existing one 5, a full disk or a failing device 3.
 */

export interface ErrorCodeInfo {
  exit: 1 | 2 | 3 | 4 | 5 | 6 | 7 | 130
  /** What happened, in a line. */
  summary: string
  /** What to do; a throw site gives a more precise hint when it knows more. */
  hint: string
}

const DEBUG_HINT = 'Rerun with DEBUG=modelforge* for a stack trace and report it with the output.'

export const ERROR_CODES = {
  // ---------------------------------------------------------------- 1: bugs
  INTERNAL: { exit: 1, summary: 'A bug in modelforge: an invariant of its own code did not hold', hint: `This is a bug in modelforge. ${DEBUG_HINT}` },
  DOWNLOAD_THREAD: { exit: 1, summary: 'A download thread failed in a way modelforge did not classify', hint: `Rerun to resume the download. ${DEBUG_HINT}` },

  // quantize: Q/DQ placement (src/onnx/qdq.ts)
  QDQ_PLAN_MISMATCH: { exit: 1, summary: 'A Q/DQ plan was applied to a model it was not made for', hint: `planQdq and applyQdq must be given the same model. ${DEBUG_HINT}` },
  QDQ_RANGE_MISSING: { exit: 1, summary: 'A tensor the Q/DQ plan quantizes has no calibrated range', hint: `The caller must calibrate every tensor of plan.activations. ${DEBUG_HINT}` },
  QDQ_WEIGHT_EXTERNAL: { exit: 1, summary: 'A weight to quantize still lives in external data', hint: `The caller must inline external data before applyQdq. ${DEBUG_HINT}` },

  // ---------------------------------------------------------------- 2: usage
  USAGE: { exit: 2, summary: 'Bad flags or arguments', hint: "See the command's --help for its flags and examples." },
  COMMAND_UNKNOWN: { exit: 2, summary: 'No command of that name', hint: '`modelforge --help` lists every command.' },
  COMMAND_MISSING: { exit: 2, summary: 'A topic (such as `store`) was named without one of its commands', hint: 'Name a command of the topic, e.g. `modelforge store list`.' },
  INVALID_NAME: { exit: 2, summary: 'An agent, version or channel name that the store cannot use', hint: 'Names are 1 to 128 letters, digits, ".", "_" and "-", starting with a letter or digit, not ending in ".tmp".' },
  INVALID_DURATION: { exit: 2, summary: 'A duration flag that is not a number with a unit', hint: 'Use 30s, 30m, 24h, 7d, or 0.' },
  INVALID_KEEP: { exit: 2, summary: 'A keep count (--keep or store.keep) that is not a whole number >= 0', hint: 'For example --keep 3.' },
  INVALID_METADATA: { exit: 2, summary: 'A --metadata entry that is not key=value', hint: 'For example --metadata dataset=v3; use --metadata-file for values that are not strings.' },
  INVALID_COSINE: { exit: 2, summary: '--min-cosine is not a number in [-1, 1]', hint: 'For example --min-cosine 0.99.' },
  INVALID_ENDPOINT: { exit: 2, summary: 'HF_ENDPOINT is not an http(s) URL without credentials', hint: 'Set HF_ENDPOINT to the Hub URL, e.g. https://huggingface.co, and pass the token in HF_TOKEN.' },
  INVALID_EXPORTER: { exit: 2, summary: 'An --exporter that is not auto, repo, native or optimum', hint: 'Pick auto, repo, native or optimum.' },
  INVALID_OPTION: { exit: 2, summary: 'An option value out of its range', hint: "See the command's --help for the accepted values." },
  INVALID_PRECISION: { exit: 2, summary: 'A --precision the command does not know', hint: "See the command's --help for the accepted precisions." },
  INVALID_REPO_ID: { exit: 2, summary: 'Not a Hugging Face repo id', hint: 'Use name or org/name (letters, digits, "-", "_", "."; no "--" or ".."), e.g. google-bert/bert-base-uncased.' },
  INVALID_REVISION: { exit: 2, summary: 'A revision that could escape the cache or is empty', hint: 'Pass a branch, a tag or a commit, e.g. main, v1.0 or refs/pr/1.' },
  INVALID_TOKEN: { exit: 2, summary: 'A Hub token that cannot be sent in an HTTP header', hint: 'Copy the token again from the Hub settings, without spaces or other characters around it.' },
  INVALID_TOLERANCE: { exit: 2, summary: 'An --atol or --rtol that is not a number >= 0 (or output:number)', hint: 'For example --atol 1e-4 or --atol logits:1e-3.' },
  INVALID_VARIANT: { exit: 2, summary: 'A --variant name the repo exporter cannot map to a file', hint: 'Use fp32, fp16, int8, quantized or the suffix of an onnx/model_<variant>.onnx file.' },
  MODEL_NOT_DIRECTORY: { exit: 2, summary: 'export was given a file where it needs a model directory', hint: 'Give the directory that holds config.json and the weights.' },
  NO_SAFETENSORS: { exit: 2, summary: 'The model directory holds no safetensors weights (only pytorch_model.bin, or none)', hint: 'Convert the checkpoint to safetensors, or use --exporter optimum.' },
  ONNX_NOT_FILE: { exit: 2, summary: 'The ONNX path is not a file', hint: 'Give the path of a .onnx file.' },
  OPSET_MISMATCH: { exit: 2, summary: 'The repo exporter copies models as they are, and this one has another opset than --opset', hint: 'Drop --opset, or use --exporter native / optimum.' },
  OUT_NOT_DIRECTORY: { exit: 2, summary: 'An --out (export, build) that is a file, or a path through one', hint: 'Point --out at a directory (the command creates it when missing), or move the file out of the way.' },
  OUT_IS_SOURCE: { exit: 2, summary: '--out is the model directory itself', hint: 'Export into a separate directory.' },
  OUTPUT_UNKNOWN: { exit: 2, summary: 'An output name that the model or reference does not have', hint: 'Name one of the outputs listed in the message.' },
  REVISION_WITH_DIRECTORY: { exit: 2, summary: '--revision given with a local directory', hint: 'Drop --revision, or give the repo id.' },
  CACHE_NOT_DIRECTORY: { exit: 2, summary: 'The Hugging Face cache (--cache-dir, HF_HUB_CACHE, HF_HOME) is a file, or a path through one', hint: 'Point --cache-dir (or HF_HUB_CACHE) at a directory, or move the file out of the way.' },
  AGENT_IS_ALIAS: { exit: 2, summary: 'A store write (stage, finalize, import, promote, rollback, prune, delete) named an alias: a link to another agent, read-only', hint: 'Write to the agent the alias leads to (the message names it); aliases are names for readers only.' },
  STORE_NOT_DIRECTORY: { exit: 2, summary: 'The store root exists but is not a directory', hint: 'Point --store (or MODEL_STORE_ROOT) at a directory.' },
  UNSAFE_PATH: { exit: 2, summary: 'A repository path that would escape the cache', hint: 'Use a relative path without "..", "." or empty parts.' },
  UNSUPPORTED_MODEL_TYPE: { exit: 2, summary: 'The native exporter does not know this model_type', hint: 'Use --exporter optimum, or a supported model type.' },
  UNSUPPORTED_CONFIG: { exit: 2, summary: 'config.json asks for something the native exporter does not implement', hint: 'Use --exporter optimum for this model.' },
  UNSUPPORTED_OPSET: { exit: 2, summary: 'An --opset the exporter cannot write', hint: 'The native exporter writes opsets 17 to 21.' },
  UNSUPPORTED_TASK: { exit: 2, summary: 'A --task the exporter does not support', hint: 'Use --exporter optimum for other tasks.' },
  USAGE_OFFLINE_REFRESH: { exit: 2, summary: '--refresh needs the network, and --offline (or HF_HUB_OFFLINE) forbids it', hint: 'Drop --refresh, or unset HF_HUB_OFFLINE.' },
  VARIANT_TASK_MISMATCH: { exit: 2, summary: 'The shipped ONNX file lacks the outputs (by name and rank) the task needs', hint: 'Pass the task the file was exported for, or use another exporter.' },
  TASK_OUTPUT_MISSING: { exit: 2, summary: 'The exported model lacks the outputs (by name and rank) that the --task asked for needs', hint: 'Pass the task the model was made for, or use another --exporter.' },
  NOT_SENTENCE_TRANSFORMERS: { exit: 2, summary: 'sentence-embedding asked of a model that is no sentence-transformers model', hint: 'Use --task feature-extraction, or a sentence-transformers model.' },
  INPUTS_REQUIRED: { exit: 2, summary: 'Expected outputs were given without the inputs they came from', hint: 'Pass those inputs with --inputs <dir|json>.' },
  INPUT_MISSING: { exit: 2, summary: 'A model input was not given', hint: 'Provide every model input (--inputs) or let validate generate them.' },
  INPUT_DTYPE_MISMATCH: { exit: 2, summary: 'An input of another element type than the model declares', hint: 'Give the input in the dtype the model declares.' },
  INPUT_SHAPE_MISMATCH: { exit: 2, summary: 'An input whose rank or fixed dims differ from the model', hint: 'Give the input in the shape the model declares.' },
  INPUT_UNGENERATABLE: { exit: 2, summary: 'validate cannot generate an input of this type', hint: 'Pass that input with --inputs.' },
  REFERENCE_EMPTY: { exit: 2, summary: 'The reference holds no expected outputs', hint: 'Add outputs to the reference, or give an ONNX model as the reference.' },
  REFERENCE_INVALID: { exit: 2, summary: 'A value in a reference or inputs file that is not what its place needs (a number, an integer in range)', hint: 'Fix the value named in the message.' },
  REFERENCE_MISMATCH: { exit: 2, summary: 'Candidate and reference do not fit together (names, counts)', hint: 'Give a reference made for this model and these inputs.' },
  OUTPUT_NOT_TENSOR: { exit: 2, summary: 'An output that is a sequence or map, which validate cannot compare', hint: 'Compare only tensor outputs (--output).' },
  TENSOR_SHAPE_MISMATCH: { exit: 2, summary: 'A tensor whose values do not fill its shape', hint: 'Fix the dims or the values named in the message.' },
  CONFIG_NOT_FOUND: { exit: 2, summary: 'A directory without config.json where a model directory belongs, or MODELFORGE_CONFIG naming no file', hint: 'Point at a Hugging Face model directory (config.json next to the weights), or fix MODELFORGE_CONFIG.' },
  IMPORT_SOURCES: { exit: 2, summary: '`store import` was given no source, or a directory together with other sources', hint: 'Give one directory (it becomes the version\'s tree) or one or more files (they become files at its top level).' },
  DUPLICATE_FILE_NAME: { exit: 2, summary: '`store import` was given two files with the same name', hint: 'Rename one of them, or import a directory that holds them at different paths.' },
  GROUP_NOT_FOUND: { exit: 2, summary: '`store init --group` names a group the system does not know', hint: 'Create the group first (groupadd), or name an existing one (`getent group` lists them).' },
  EXPORT_DTYPE_UNSUPPORTED: { exit: 2, summary: 'export --dtype other than fp32 with an exporter that does not write it (only native does)', hint: 'Export in fp32 and convert with modelforge quantize --precision fp16, or pass --exporter native.' },
  DTYPE_UNSUPPORTED: { exit: 2, summary: 'A tensor element type modelforge cannot read or run', hint: 'Use one of the dtypes listed in the message.' },

  // builders (trtexec)
  INVALID_SHAPE_RANGE: { exit: 2, summary: 'A --batch, --seq or --dim range that is not min:opt:max of positive integers in order, or beyond what the model takes', hint: 'For example --batch 1:8:32 or --seq 1:128:512 (the sequence maximum at most max_position_embeddings).' },
  SHAPE_RANGE_REQUIRED: { exit: 2, summary: 'A dynamic input dimension whose range modelforge cannot choose by itself', hint: 'Give its range (the message says which flag), or export the model with that dimension fixed.' },
  PRECISION_NEEDS_TRANSFORM: { exit: 2, summary: 'The precision needs a model whose own types carry it (an fp16 model, or a Q/DQ model for int8)', hint: 'Make one with `modelforge quantize --precision fp16` or `--precision int8 --calib-data <file>` and build that model, or let build make it (build --precision int8 --calib-data <file>; fp16 on TensorRT 11).' },
  // generate (src/validate/generate.ts)
  DECODER_INTERFACE: { exit: 2, summary: 'A model given to generate is not a causal LM with the inputs and outputs Optimum writes', hint: 'Export it with --task text-generation-with-past: input_ids, attention_mask, position_ids, past_key_values.N.key/value in; logits, present.N.key/value out.' },
  // quantize: calibration data and ranges (src/validate/calib-data.ts, calibrate.ts)
  CALIB_DATA_EMPTY: { exit: 2, summary: 'The calibration data holds no sample', hint: 'Give a file with one text sample per line (or JSONL with "text"), or a directory of test_data_set_N/input_M.pb.' },
  CALIB_DATA_INVALID: { exit: 2, summary: 'Calibration data that does not fit the model or its format (a JSONL line without "text", a data set lacking an input, a wrong dtype)', hint: 'The message names the line or file; fix it, or give data sets written for this model.' },
  TOKENIZER_REQUIRED: { exit: 2, summary: 'Text calibration data for a model with no tokenizer.json beside it', hint: 'Pass --tokenizer <tokenizer.json or the model directory>, or give ONNX test-data inputs.' },
  CALIB_TENSOR_INVALID: { exit: 2, summary: 'A tensor asked to be calibrated is not a float32 value of the model', hint: 'Only float32 activations take a calibrated range; give the fp32 model.' },
  // quantize: the orchestration (src/validate/quantize.ts)
  CALIB_DATA_REQUIRED: { exit: 2, summary: 'An int8 model was asked for without calibration data', hint: 'Pass --calib-data <file|dir> (text, JSONL with a "text" field, or ONNX test-data inputs), or --calib-cache <file> from an earlier run.' },
  MODEL_TOO_LARGE: { exit: 2, summary: 'The transformed model would exceed protobuf\'s 2 GiB limit for a single file', hint: 'quantize writes single-file models; models this large need external data, which it does not write yet.' },
  PRECISION_UNSUPPORTED: { exit: 2, summary: 'This TensorRT version cannot build that precision (no such trtexec flag, or not with this model)', hint: 'Pick another --precision; the message names the ones this TensorRT builds.' },
  TRTEXEC_OPTION_UNSUPPORTED: { exit: 2, summary: 'An option or value that this version of trtexec does not have', hint: 'Drop the option, or use a TensorRT version that has it (the message says which).' },
  TRTEXEC_NAME_UNSUPPORTED: { exit: 2, summary: "An input name or file path that trtexec's list syntax cannot carry (a comma, a single quote, a '*')", hint: 'Rename the input (re-export the model), or use a path without those characters.' },
  TRTEXEC_NOT_EXECUTABLE: { exit: 2, summary: '--trtexec or TRTEXEC names a directory, or a file that is not executable', hint: 'Point it at the trtexec program itself (chmod +x if it lost its mode).' },

  // quantize: Q/DQ placement (src/onnx/qdq.ts)
  NOTHING_TO_QUANTIZE: { exit: 2, summary: 'int8 was asked of a model without a MatMul, Gemm or Conv carrying a float32 weight', hint: 'int8 needs a model with dense or convolution layers; build this one in fp16 or fp32 instead.' },
  ALREADY_QUANTIZED: { exit: 2, summary: 'The model holds QuantizeLinear/DequantizeLinear or quantized operators (QLinear*, MatMulInteger) already', hint: 'Give the fp32 model it came from.' },
  QDQ_OPSET_TOO_LOW: { exit: 2, summary: 'The model\'s default-domain opset is below 13, which per-channel DequantizeLinear needs', hint: 'Re-export the model with opset 13 or later (modelforge export --opset 17).' },
  // quantize --precision fp16 (src/onnx/to-fp16.ts, src/validate/fp16-model.ts)
  ALREADY_FP16: { exit: 2, summary: 'An fp16 model was given to the fp16 transform (its weights are stored in float16 already)', hint: 'Give the float32 model it was converted from.' },
  NO_FLOAT32_COMPUTE: { exit: 2, summary: 'The fp16 transform found no float32 node to convert (the model computes in other types, or every float32 node is kept in float32)', hint: 'Give a float32 model; shorten --keep-fp32 or raise --fp16-max-abs if they keep every node.' },
  FP16_TYPES_UNKNOWN: { exit: 2, summary: 'The fp16 transform was not told the element type of some values and cannot infer it from the graph', hint: "Pass onnxruntime's inferred types (valueTypes), or declare the values in the graph's value_info." },
  FP16_EXTERNAL_DATA: { exit: 2, summary: 'The fp16 transform was given a model whose float32 tensors are still in external data files', hint: 'Load the external data into the model first (inlineExternalData), as makeFp16Model does.' },
  FP16_NO_SAMPLES: { exit: 2, summary: 'The fp16 magnitude check was given no sample inputs to run', hint: 'Give at least one batch of sample inputs (calibration data or generated inputs).' },

  // model registry (src/registry)
  REGISTRY_URL_INVALID: { exit: 2, summary: 'The model registry URL (--registry, MODELFORGE_REGISTRY_URL) is not a postgres:// URL', hint: 'Write it as postgres://user:password@host:5432/database.' },
  REGISTRY_SCHEMA_NEWER: { exit: 2, summary: 'The model registry was migrated by a newer modelforge than this one', hint: 'Upgrade modelforge; nothing was written.' },
  INVALID_SIZE: { exit: 2, summary: 'A size (--max-bytes, store.maxBytes) is not a number of bytes with an optional unit', hint: 'Use bytes or a number with a unit: 500MB, 50GB, 40GiB.' },
  OCI_REFERENCE_INVALID: { exit: 2, summary: 'An OCI reference is not host[:port]/repository[:tag|@sha256:digest]', hint: 'Write it as registry.internal:5000/models/scout:v3; the registry host is required.' },
  CAPABILITY_INVALID: { exit: 2, summary: 'A --capability that is not key=value', hint: 'Write it as key=value, e.g. --capability task=text-classification.' },
  SEARCH_INVALID: { exit: 2, summary: 'A registry search flag with an impossible value (--sha256, --sort, --limit)', hint: 'See modelforge registry search --help.' },
  PREFERENCE_INVALID: { exit: 2, summary: 'registry config set was given a bad key or a value its key does not take', hint: 'docs/configuration.md lists each key and the values it takes.' },

  // ---------------------------------------------------------------- 2: the operating system, paths of the wrong kind
  NOT_A_DIRECTORY: { exit: 2, summary: 'A path that must be a directory is a file (or runs through one)', hint: 'Point the flag at a directory, or move the file out of the way.' },
  IS_A_DIRECTORY: { exit: 2, summary: 'A path that must be a file is a directory', hint: 'Point the flag at a file, or move the directory out of the way.' },
  NAME_TOO_LONG: { exit: 2, summary: 'A path longer than the filesystem allows', hint: 'Use a shorter path.' },

  // ---------------------------------------------------------------- 3: external tools, the network, the machine
  TOOL_NOT_FOUND: { exit: 3, summary: 'An external program is not installed or not on PATH', hint: 'Install it or put it on PATH.' },
  TOOL_FAILED: { exit: 3, summary: 'An external program exited with an error', hint: 'Read the tool output in the message; rerun the same command by hand to reproduce.' },
  TOOL_TIMEOUT: { exit: 3, summary: 'An external program ran longer than allowed and was stopped', hint: 'Rerun; raise the timeout if the work is really that long.' },
  TOOL_CANCELLED: { exit: 3, summary: 'An external program was cancelled', hint: 'Rerun when nothing interrupts it.' },
  OPTIMUM_NO_MODEL: { exit: 3, summary: 'optimum-cli finished without writing model.onnx', hint: 'Encoder-decoder models export to several files, which modelforge does not handle; pick an encoder-only model.' },
  HUB_UNREACHABLE: { exit: 3, summary: 'The Hub could not be reached (after retries)', hint: 'Check the network and HF_ENDPOINT; rerun to resume; --offline works from the cache only.' },
  HUB_SERVER_ERROR: { exit: 3, summary: 'The Hub answered 5xx (after retries)', hint: 'Rerun later to resume.' },
  HUB_HTTP_ERROR: { exit: 3, summary: 'The Hub answered an HTTP error modelforge does not map to another code', hint: 'Read the status and message; rerun.' },
  HUB_BAD_RESPONSE: { exit: 3, summary: 'The Hub answered something that is not what its API documents', hint: 'Check HF_ENDPOINT points at a Hugging Face Hub.' },
  HUB_UNSAFE_PATH: { exit: 3, summary: 'The Hub listed a file path that would escape the cache', hint: 'Report it to the repository owner.' },
  ACCESS_DENIED: { exit: 3, summary: 'The Hub refused access (403)', hint: 'Accept the model\'s terms on the Hub, or use a token with access (HF_TOKEN).' },
  DISK_FULL: { exit: 3, summary: 'No space left on the device (or the quota is used up)', hint: 'Free space on that filesystem (`store prune`, `store gc` in a store) and rerun.' },
  IO_ERROR: { exit: 3, summary: 'The device failed to read or write', hint: 'Check the disk (dmesg); rerun.' },
  TOO_MANY_OPEN_FILES: { exit: 3, summary: 'The process or the system ran out of file descriptors', hint: 'Raise the limit (ulimit -n) and rerun.' },

  // builders (trtexec)
  TRTEXEC_NOT_FOUND: { exit: 3, summary: 'trtexec is not installed where modelforge looks (--trtexec, TRTEXEC, PATH, /usr/src/tensorrt/bin/trtexec)', hint: 'Install TensorRT (its packages put trtexec in /usr/src/tensorrt/bin; NGC TensorRT containers have it), or point TRTEXEC at trtexec.' },
  TRTEXEC_NOT_TRTEXEC: { exit: 3, summary: "The program given as trtexec did not print trtexec's `&&&& RUNNING TensorRT.trtexec` banner for --help", hint: 'Check that the path is trtexec; if it is, its TensorRT libraries may be missing (see the output in the message; LD_LIBRARY_PATH).' },
  TRTEXEC_FAILED: { exit: 3, summary: 'trtexec failed to build or run the engine (details.failure.class says why: unsupported operator, out of memory, no GPU, a crash...)', hint: 'Read the cause and the [E] lines in the message; the whole log is in the file it names.' },
  TRTEXEC_TIMEOUT: { exit: 3, summary: 'trtexec ran longer than --timeout and was stopped', hint: 'Raise --timeout, or lower --builder-optimization-level to build faster; the timing cache makes the next build of this model faster too.' },
  TRTEXEC_BAD_OUTPUT: { exit: 3, summary: 'trtexec reported success but did not write a file it was asked for, or wrote one that is not in its format', hint: 'Rerun the trtexec command (build --dry-run prints it) by hand and look at the file; report it with the trtexec version.' },
  TRTEXEC_UNSUPPORTED: { exit: 3, summary: 'The trtexec found is of a TensorRT version modelforge does not drive', hint: 'Install TensorRT 8.6 or later (10.x recommended), or point TRTEXEC at a newer trtexec.' },

  // model registry (src/registry)
  REGISTRY_UNREACHABLE: { exit: 3, summary: 'The model registry server could not be reached or failed', hint: 'Check that PostgreSQL runs at the URL\'s host and port; store writes still succeed and registry sync catches up.' },
  REGISTRY_AUTH_FAILED: { exit: 3, summary: 'The model registry server refused the credentials of the URL', hint: 'Check the user and password in the registry URL (never printed) and the server\'s pg_hba.conf.' },
  OCI_UNREACHABLE: { exit: 3, summary: 'The OCI registry could not be reached', hint: 'Check the host, port and TLS (--plain-http for a registry without it); a push or pull resumes when rerun.' },
  OCI_SERVER_ERROR: { exit: 3, summary: 'The OCI registry kept failing (HTTP 5xx)', hint: 'Retry later; a push or pull resumes from what it has.' },
  OCI_AUTH_FAILED: { exit: 3, summary: 'The OCI registry refused the credentials, or asked for some and none were given', hint: 'docker login <registry>, or set MODELFORGE_OCI_USERNAME and MODELFORGE_OCI_PASSWORD (never printed).' },
  OCI_ACCESS_DENIED: { exit: 3, summary: 'The OCI registry accepted the credentials but denied the operation', hint: 'Ask for pull (or push) access to the repository.' },
  OCI_HTTP_ERROR: { exit: 3, summary: 'The OCI registry refused a request (HTTP 4xx)', hint: 'Check the reference and the registry\'s limits; the message carries the registry\'s own error.' },

  // ---------------------------------------------------------------- 4: validation and integrity
  // readers (src/reader)
  ARTIFACT_MISSING: { exit: 4, summary: 'A published version lacks the model file its manifest names (or model.onnx)', hint: 'The version is damaged: run `modelforge store verify <agent>` and publish a new version.' },
  ENGINE_MISMATCH: { exit: 4, summary: 'A TensorRT engine was built for another GPU compute capability or TensorRT version than this machine has', hint: 'Build the engine on this kind of GPU with this TensorRT (modelforge build-engine), or serve the version\'s model.onnx with onnxruntime.' },
  ENGINE_RECORD_INVALID: { exit: 4, summary: "An engine's engine.json is not the record modelforge build writes", hint: 'Rebuild the engine with modelforge build or build-engine: engine.json must say the GPU and TensorRT version.' },
  CACHE_CORRUPT: { exit: 4, summary: 'A file in the Hugging Face cache no longer matches the size or hash its listing gives', hint: 'Remove the blobs named in the message and fetch again with network access.' },
  REF_INVALID: { exit: 4, summary: 'A refs/<revision> file in the Hugging Face cache that does not hold a 40-hex commit', hint: 'Rerun fetch with --refresh to ask the Hub for the commit again; that rewrites the ref.' },
  VALIDATION_FAILED: { exit: 4, summary: 'The candidate\'s outputs are not within tolerance of the reference', hint: 'The table names each output and by how much it is off.' },
  VERIFY_FAILED: { exit: 4, summary: 'A finalized version no longer matches its manifest', hint: 'Restore the named files from a backup, or publish a new version and prune the damaged one.' },
  HASH_MISMATCH: { exit: 4, summary: 'Bytes whose hash is not the one expected', hint: 'Rerun: damaged bytes are never kept.' },
  SIZE_MISMATCH: { exit: 4, summary: 'More or fewer bytes than expected', hint: 'Rerun: damaged bytes are never kept.' },
  MANIFEST_MISSING: { exit: 4, summary: 'A version without manifest.json', hint: 'Restore the version from a backup, or publish a new one.' },
  MANIFEST_INVALID: { exit: 4, summary: 'A manifest.json that is not a valid manifest', hint: 'Restore the version from a backup, or publish a new one (`store verify` lists what is wrong).' },
  MANIFEST_SCHEMA_UNKNOWN: { exit: 4, summary: 'A manifest written by a newer modelforge', hint: 'Upgrade modelforge to read it.' },
  MANIFEST_RESERVED: { exit: 4, summary: 'The staged tree holds a top-level manifest.json of its own, which finalize writes', hint: 'Remove or rename it; pass metadata with --metadata or --metadata-file (one an interrupted finalize of this version wrote is rewritten).' },
  METADATA_FILE_INVALID: { exit: 4, summary: 'A --metadata-file that does not hold one JSON object', hint: 'Write it as {"key": "value", ...}.' },
  CHANNEL_DANGLING: { exit: 4, summary: 'A channel link (current, staging, ...) that points to no version of its agent', hint: 'Point it at an existing version with `store promote`.' },
  CHANNEL_OUTSIDE: { exit: 4, summary: "A channel link that leads outside its agent's versions/ directory (another agent, another store, a staging directory, a file)", hint: 'Point it at a version of the agent with `store promote`.' },
  AGENT_ALIAS_INVALID: { exit: 4, summary: 'An agent entry that is a link, but to no agent directory of the store: outside it, to something else, nowhere, or to another alias', hint: 'Point the link at an agent directory of this store with a relative link (`ln -sfn <agent> <root>/<alias>`), or remove it.' },
  CHANNEL_INVALID: { exit: 4, summary: 'Something named like a channel that is not a link modelforge can move', hint: 'Move it out of the agent directory, or choose another channel name.' },
  STAGING_INVALID: { exit: 4, summary: 'A staging path that is not a directory', hint: 'Remove it and stage the version again.' },
  UNSUPPORTED_FILE_TYPE: { exit: 4, summary: 'A staged tree holding symlinks, devices, sockets or fifos', hint: 'Replace links by copies and remove the special files.' },
  BAD_FILE_NAME: { exit: 4, summary: 'A file name sha256sum would escape (newline, carriage return, backslash)', hint: 'Rename those files.' },
  EMPTY_VERSION: { exit: 4, summary: 'A staged tree that holds no files (an empty version)', hint: 'Check what filled the staging directory; pass --allow-empty if an empty version is really meant.' },
  UNREADABLE_FILE: { exit: 4, summary: 'A staged file or directory that cannot be read', hint: 'Make the staged tree readable by this user, then finalize again.' },
  CONFIG_INVALID: { exit: 4, summary: 'The MODELFORGE_CONFIG file is not valid JSON, or a key has the wrong type or value', hint: 'Fix the key named in the message; docs/configuration.md lists every key.' },
  MODEL_CONFIG_INVALID: { exit: 4, summary: "A model's config.json that is not valid JSON or holds impossible values", hint: 'Download the model again, or fix the value named in the message.' },
  JSON_INVALID: { exit: 4, summary: 'A JSON file that is not valid JSON or not of the expected shape', hint: 'Fix the file named in the message.' },
  ONNX_INVALID: { exit: 4, summary: 'A file that is not a well-formed ONNX model', hint: 'Re-export the model; `modelforge inspect` lists what is wrong.' },
  ONNX_UNSUPPORTED: { exit: 4, summary: 'A model onnxruntime cannot run (operator, type or opset)', hint: 'Re-export with a lower opset (export --opset 17).' },
  ONNX_RUN_FAILED: { exit: 4, summary: 'onnxruntime failed while running the model', hint: 'Check the inputs against the model (`modelforge inspect`).' },
  TENSOR_INVALID: { exit: 4, summary: 'A serialized tensor (.pb) that is broken', hint: 'Regenerate the file.' },
  EXTERNAL_DATA_INVALID: { exit: 4, summary: 'External data references that are malformed or escape the model directory', hint: 'Re-export the model.' },
  EXPORT_SMOKE_FAILED: { exit: 4, summary: 'The exported model failed its run in onnxruntime; nothing was written', hint: 'Report it with the model id, or try another --exporter.' },
  SAFETENSORS_INVALID: { exit: 4, summary: 'A safetensors file whose header or offsets are broken', hint: 'Download the checkpoint again (`modelforge fetch --refresh`).' },
  SAFETENSORS_INDEX_INVALID: { exit: 4, summary: 'A model.safetensors.index.json that is broken or names missing shards', hint: 'Download the checkpoint again.' },
  SENTENCE_TRANSFORMERS_INVALID: { exit: 4, summary: 'modules.json or a pooling config that is broken', hint: 'Download the model again, or fix the named file.' },
  WEIGHTS_MISSING: { exit: 4, summary: 'The checkpoint lacks a tensor that config.json implies', hint: 'Check that config.json belongs to these weights.' },
  WEIGHTS_SHAPE_MISMATCH: { exit: 4, summary: 'A checkpoint tensor whose shape disagrees with config.json', hint: 'Check that config.json belongs to these weights.' },
  WEIGHTS_UNUSED: { exit: 4, summary: 'The checkpoint holds tensors config.json does not describe (a decoder export refuses them)', hint: 'Use the config.json saved with these weights.' },
  WEIGHTS_DTYPE: { exit: 4, summary: 'A checkpoint tensor of a type the exporter cannot convert', hint: 'Convert the checkpoint to float32, float16 or bfloat16.' },
  TOY_MODEL_CHECK_FAILED: { exit: 4, summary: 'A toy model failed its onnxruntime check', hint: `This is a bug in the toy model builder. ${DEBUG_HINT}` },

  // quantize: Q/DQ placement (src/onnx/qdq.ts)
  QDQ_RANGE_INVALID: { exit: 4, summary: 'A calibrated activation range that is not a finite number >= 0', hint: 'The model produced non-finite values on the calibration data, or the calibration cache is damaged: check the data and calibrate again without --calib-cache.' },
  QDQ_WEIGHT_NON_FINITE: { exit: 4, summary: 'A weight to quantize holds NaN or Infinity', hint: 'Check the checkpoint the model was exported from.' },
  // quantize: calibration data and ranges (src/validate/calib-data.ts, calibrate.ts)
  TOKENIZER_INVALID: { exit: 4, summary: 'A tokenizer.json the tokenizer library cannot load', hint: 'Give the model\'s own tokenizer.json (Hugging Face tokenizers format), with --tokenizer if it is elsewhere.' },
  CALIB_NON_FINITE: { exit: 4, summary: 'An activation held no finite value on the calibration data', hint: 'The model overflows on these inputs: check the calibration data and the model.' },
  // quantize: the calibration cache (src/validate/quantize.ts)
  CALIB_CACHE_INVALID: { exit: 4, summary: 'The --calib-cache file is not a modelforge calibration cache', hint: 'Give the .calib.json an earlier `quantize --precision int8` wrote next to its model, or calibrate again with --calib-data.' },
  CALIB_CACHE_MISMATCH: { exit: 4, summary: 'The --calib-cache ranges belong to another model or another Q/DQ placement', hint: 'Calibrate this model with --calib-data (it writes a new cache), or use the placement flags the cache was made with.' },

  // model registry (src/registry)
  REGISTRY_CORRUPT: { exit: 4, summary: 'The embedded model registry directory cannot be opened as a database', hint: 'The registry is an index of the store: move .modelforge/registry aside and run modelforge registry sync.' },
  OCI_ARTIFACT_INVALID: { exit: 4, summary: 'A pulled OCI artifact is not a version modelforge can take: bad layer paths, sizes, digests, or a manifest.json that disagrees with the layers', hint: 'Nothing was written to the store; push versions with modelforge store push.' },
  OCI_BLOB_MISMATCH: { exit: 4, summary: 'A blob pulled from the OCI registry does not have the sha256 or size its manifest declares', hint: 'The registry\'s copy is damaged or was replaced; push the version again. Nothing was published.' },
  OCI_CREDENTIALS_INVALID: { exit: 4, summary: 'The docker config file holding the OCI registry credentials cannot be read', hint: 'Fix it (docker login rewrites it), or set MODELFORGE_OCI_USERNAME and MODELFORGE_OCI_PASSWORD.' },

  // ---------------------------------------------------------------- 5: conflicts
  VERSION_EXISTS: { exit: 5, summary: 'That version exists already; finalized versions are immutable', hint: 'Choose a new version name.' },
  STAGING_EXISTS: { exit: 5, summary: 'That version is being staged already', hint: 'Finalize it, or remove it with `store gc --older-than 0`.' },
  VERSION_IN_USE: { exit: 5, summary: 'A version that a channel points to, which `store delete` does not remove', hint: 'Point the channel at another version first (`store promote`), then delete.' },
  LOCKED: { exit: 5, summary: 'Another process holds the agent\'s writer lock', hint: 'Wait for it to finish.' },
  LOCK_HELD: { exit: 5, summary: 'Another fetch held a blob\'s lock for longer than the wait', hint: 'Wait for the other fetch, or remove the lock file if its process is gone.' },
  OUT_LOCKED: { exit: 5, summary: 'Another export is writing to the same --out', hint: 'Wait for it to finish, or export into another --out.' },
  OUTPUT_EXISTS: { exit: 5, summary: 'The output exists already', hint: 'Choose another --out, or pass --force.' },
  PATH_EXISTS: { exit: 5, summary: 'A path modelforge had to create exists already', hint: 'Move it out of the way, or choose another path.' },

  // model registry (src/registry)
  REGISTRY_LOCKED: { exit: 5, summary: 'Another process is using the embedded model registry (PGlite takes one at a time)', hint: 'Retry when it is done, or raise MODELFORGE_REGISTRY_LOCK_TIMEOUT (seconds).' },
  OCI_VERSION_CONFLICT: { exit: 5, summary: 'The store already holds the pulled version under that name, with other files', hint: 'Pull it under another name with --version, or delete the store\'s version first.' },

  // ---------------------------------------------------------------- 6: not found
  // readers (src/reader)
  MODEL_UNAVAILABLE: { exit: 6, summary: 'A reader found no published version of its agent and was given no fallback', hint: 'Publish one (modelforge build-engine --agent <agent> ...), or pass fallbackModelId for a model in the HF cache (with STRICT_MODEL_STORE unset).' },
  FALLBACK_NO_ONNX: { exit: 6, summary: 'The fallback model is in the HF cache but holds no ONNX file', hint: 'Fetch a repo that ships model.onnx or onnx/model.onnx, or publish a version with modelforge build-engine.' },
  ENGINE_RECORD_MISSING: { exit: 6, summary: 'A directory given as an engine has no engine.json', hint: 'Give the version directory build-engine (or the --out directory build) wrote.' },
  STORE_NOT_FOUND: { exit: 6, summary: 'The model store does not exist', hint: 'Check --store or MODEL_STORE_ROOT.' },
  AGENT_NOT_FOUND: { exit: 6, summary: 'No such agent in the store', hint: 'List the agents with `modelforge store list`.' },
  VERSION_NOT_FOUND: { exit: 6, summary: 'No such version of the agent', hint: 'List the versions with `modelforge store list --agent <agent>`.' },
  NO_CURRENT: { exit: 6, summary: 'The agent has no version on that channel (strict mode)', hint: 'Publish one with `store finalize` or `store promote`.' },
  NOT_STAGED: { exit: 6, summary: 'finalize of a version that was not staged', hint: 'Stage it first with `modelforge store stage`.' },
  NO_PREVIOUS: { exit: 6, summary: 'rollback found no earlier current version', hint: 'Point current explicitly with `modelforge store promote`.' },
  PREVIOUS_GONE: { exit: 6, summary: 'Every earlier current version rollback could return to no longer exists', hint: 'Point current explicitly with `modelforge store promote`.' },
  NOT_CACHED: { exit: 6, summary: 'Not in the Hugging Face cache, and the Hub may not be contacted', hint: 'Fetch it once with network access.' },
  REPO_NOT_FOUND: { exit: 6, summary: 'The Hub has no such repository (or it needs a token)', hint: 'Check the repo id; pass HF_TOKEN for a private or gated repository.' },
  REVISION_NOT_FOUND: { exit: 6, summary: 'The repository has no such branch, tag or commit', hint: 'Check --revision.' },
  ENTRY_NOT_FOUND: { exit: 6, summary: 'A file listed for the repository is missing on the Hub', hint: 'Rerun with --refresh.' },
  NO_MATCHING_FILES: { exit: 6, summary: 'No file of the repository matches the selection', hint: 'Adjust --include / --exclude.' },
  MODEL_NOT_FOUND: { exit: 6, summary: 'Neither a directory nor a cached repo id', hint: 'Give a local model directory, or fetch the repo id first.' },
  REPO_ONNX_NOT_FOUND: { exit: 6, summary: 'The repository ships no ONNX file for the repo exporter', hint: 'Use --exporter native or optimum.' },
  ONNX_NOT_FOUND: { exit: 6, summary: 'The ONNX model file does not exist', hint: 'Check the path.' },
  REFERENCE_NOT_FOUND: { exit: 6, summary: 'The reference or inputs path does not exist', hint: 'Check the path.' },
  EXTERNAL_DATA_MISSING: { exit: 6, summary: 'A model names an external data file that is not there', hint: 'Copy the external data files next to the model.' },
  WEIGHTS_NOT_FOUND: { exit: 6, summary: 'A weights file named by the checkpoint is not there', hint: 'Download the checkpoint again.' },
  JSON_NOT_FOUND: { exit: 6, summary: 'A JSON file that must be there is not', hint: 'Check the path named in the message.' },
  PATH_NOT_FOUND: { exit: 6, summary: 'A path modelforge had to read does not exist', hint: 'Check the path named in the message.' },

  // builders (trtexec)
  TRTEXEC_PATH_NOT_FOUND: { exit: 6, summary: '--trtexec or TRTEXEC names a path that does not exist', hint: 'Fix the path, or unset TRTEXEC to search PATH and /usr/src/tensorrt/bin.' },

  // quantize: calibration data (src/validate/calib-data.ts)
  CALIB_DATA_NOT_FOUND: { exit: 6, summary: 'The --calib-data path does not exist', hint: 'Check --calib-data: a text file, a .jsonl file, or a directory of ONNX test-data inputs.' },
  TOKENIZER_NOT_FOUND: { exit: 6, summary: 'The --tokenizer path does not exist', hint: 'Give a tokenizer.json, or the model directory holding one.' },

  // model registry (src/registry)
  REGISTRY_NOT_CONFIGURED: { exit: 6, summary: 'The store has no model registry (no --registry, no MODELFORGE_REGISTRY_URL, no embedded one)', hint: 'Create the embedded one with modelforge registry sync, or pass --registry postgres://...' },
  REGISTRY_AGENT_NOT_FOUND: { exit: 6, summary: 'The model registry knows no such agent', hint: 'modelforge registry list shows the agents it knows.' },
  REGISTRY_VERSION_NOT_FOUND: { exit: 6, summary: 'The model registry knows no such version of the agent', hint: 'modelforge registry show <agent> lists its versions.' },
  OCI_NOT_FOUND: { exit: 6, summary: 'The OCI registry has no such repository, tag or manifest', hint: 'Check the reference; modelforge store push creates it.' },

  // ---------------------------------------------------------------- 7: refused
  OCI_REGISTRY_NOT_ALLOWED: { exit: 7, summary: 'The OCI registry is not in distribution.allowedRegistries (MODELFORGE_CONFIG or the model registry\'s preferences)', hint: 'Use an allowed registry, or add it to distribution.allowedRegistries.' },
  SOURCE_NOT_ALLOWED: { exit: 7, summary: 'The repository is not among download.allowedSources', hint: 'Add it to download.allowedSources in MODELFORGE_CONFIG, or fetch an allowed model.' },
  APPROVAL_REQUIRED: { exit: 7, summary: 'The policy requires approval for downloads', hint: 'Rerun with --yes to approve.' },
  PERMISSION_DENIED: { exit: 7, summary: 'The operating system refused access to a path (file modes, ownership, an immutable file)', hint: 'Run as a user who may write there (check ls -l and lsattr), or choose another path.' },
  READ_ONLY_FILESYSTEM: { exit: 7, summary: 'The path is on a read-only filesystem', hint: 'Write somewhere writable, or remount the filesystem read-write.' },

  // ---------------------------------------------------------------- 130: interrupted
  INTERRUPTED: { exit: 130, summary: 'Stopped by Ctrl-C (SIGINT) or SIGTERM; what the command ran was stopped and what it had started to write removed', hint: 'Rerun the command when it may run to the end.' },
} as const satisfies Record<string, ErrorCodeInfo>

export type ErrorCode = keyof typeof ERROR_CODES

/** The codes whose exit code is E: what each error class accepts. */
export type CodeWithExit<E extends ErrorCodeInfo['exit']> = { [K in ErrorCode]: (typeof ERROR_CODES)[K]['exit'] extends E ? K : never }[ErrorCode]

export function isErrorCode(code: string): code is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_CODES, code)
}
