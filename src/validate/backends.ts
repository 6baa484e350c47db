/**
 * What the installed onnxruntime-node can run on: its version and its execution providers. The binding
 * lists the providers it was compiled with (listSupportedBackends) and whether each is bundled in the npm
 * package; CUDA and TensorRT are compiled in but not bundled: their provider libraries come from
 * onnxruntime-node's install script (`onnxruntime-node-install=cuda12`), which this project's .npmrc skips
 * by default. So a provider is usable here when it is bundled or its library is in the binding's folder;
 * whether a GPU and the CUDA runtime are there to load it is a question for nvidia-smi, not for this list.
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import ort from 'onnxruntime-node'

export interface RuntimeBackend {
  /** The name onnxruntime-node's binding gives: 'cpu', 'cuda', 'tensorrt', 'webgpu', 'dml', 'coreml'. */
  name: string
  available: boolean
  /** How we know: bundled in the package, its provider library present, or what is missing. */
  how: string
}

export interface RuntimeInfo {
  package: 'onnxruntime-node'
  version: string
  /** The folder holding the native binding (and any installed provider libraries). */
  bindingDir: string
  backends: RuntimeBackend[]
}

function bindingDir(): string {
  const main = createRequire(import.meta.url).resolve('onnxruntime-node')
  return join(dirname(main), '..', 'bin', 'napi-v6', process.platform, process.arch)
}

function providerLibrary(dir: string, name: string): string {
  const file = process.platform === 'win32' ? `onnxruntime_providers_${name}.dll`
    : process.platform === 'darwin' ? `libonnxruntime_providers_${name}.dylib`
      : `libonnxruntime_providers_${name}.so`
  return join(dir, file)
}

export function runtimeInfo(): RuntimeInfo {
  const dir = bindingDir()
  const backends = ort.listSupportedBackends().map(({ name, bundled }): RuntimeBackend => {
    if (bundled) return { name, available: true, how: 'bundled in the onnxruntime-node package' }
    const lib = providerLibrary(dir, name)
    if (existsSync(lib)) return { name, available: true, how: `provider library installed (${lib}); it loads only with a GPU driver and the CUDA runtime` }
    return {
      name,
      available: false,
      how: `compiled in, but its provider library (${lib}) is not installed: onnxruntime-node's install script downloads it with onnxruntime-node-install=cuda12 (this project's .npmrc skips it)`,
    }
  })
  return { package: 'onnxruntime-node', version: ort.env.versions.node ?? ort.env.versions.common, bindingDir: dir, backends }
}
