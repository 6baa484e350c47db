/**
 * Which files of a repo a fetch brings: --include / --exclude globs (minimatch; a pattern without "/"
 * matches the file name in any folder, like .gitignore and like huggingface_hub's fnmatch-based
 * allow_patterns do for "*.json"), or by default what exporting needs: configs, tokenizer files, the
 * weights (safetensors when the repo has them, else PyTorch .bin) and any ONNX files already there.
 */
import { minimatch } from 'minimatch'

export interface SelectOptions {
  include?: string[]
  exclude?: string[]
}

/** Config and tokenizer files of transformers / sentence-transformers repos. */
const ALWAYS = ['*.json', '*.txt', '*.model', '*.tiktoken', 'merges.txt', 'vocab.*', '*.spm']
/** ONNX models and their external data, under any name convention (Optimum, transformers.js, PyTorch exporter). */
const ONNX = ['*.onnx', '*.onnx_data', '*.onnx_data_*', '*.onnx.data', '*.ort']
const SAFETENSORS = ['*.safetensors']
const PYTORCH = ['pytorch_model*.bin']
/** Never wanted by default even if a pattern above matches. */
const DEFAULT_EXCLUDE = ['.gitattributes', 'openvino/**', 'coreml/**', '*.mlpackage/**']

function matches(path: string, pattern: string): boolean {
  // "onnx/" means everything under onnx/, as huggingface_hub's filter_repo_objects reads a trailing "/".
  const p = pattern.endsWith('/') ? `${pattern}**` : pattern
  return minimatch(path, p, { dot: true, matchBase: !p.includes('/') })
}

export function matchesAny(path: string, patterns: string[]): boolean {
  return patterns.some((p) => matches(path, p))
}

/** The default include patterns for a listing (they depend on whether safetensors weights exist). */
export function defaultPatterns(paths: string[]): string[] {
  const hasSafetensors = paths.some((p) => matchesAny(p, SAFETENSORS))
  return [...ALWAYS, ...ONNX, ...(hasSafetensors ? SAFETENSORS : PYTORCH)]
}

export function selectPaths(paths: string[], options: SelectOptions = {}): string[] {
  const explicit = options.include !== undefined && options.include.length > 0
  const include = explicit ? options.include! : defaultPatterns(paths)
  const exclude = [...(options.exclude ?? []), ...(explicit ? [] : DEFAULT_EXCLUDE)]
  const picked = new Set(paths.filter((p) => matchesAny(p, include) && !matchesAny(p, exclude)))
  // An ONNX model is unusable without its external data (onnxruntime opens "<model>.onnx_data" next to it),
  // so --include "onnx/model.onnx" brings that file along unless --exclude names it.
  for (const p of paths) {
    if (picked.has(p) || matchesAny(p, exclude)) continue
    const m = /^(.*\.onnx)(?:_data(?:_\d+)?|\.data)$/.exec(p)
    if (m && picked.has(m[1]!)) picked.add(p)
  }
  return [...picked].sort()
}

/** Whether a pattern can match only itself (no glob characters): used to name missing files offline. */
export function isLiteral(pattern: string): boolean {
  return !/[*?[\]{}!]/.test(pattern) && !pattern.endsWith('/')
}
