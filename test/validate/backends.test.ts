/** What the installed onnxruntime-node offers, as doctor reports it. */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import ort from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import { runtimeInfo } from '../../src/validate/backends.js'

describe('runtimeInfo', () => {
  const info = runtimeInfo()

  it("names the package version and the binding's folder", () => {
    expect(info.package).toBe('onnxruntime-node')
    expect(info.version).toBe(ort.env.versions.node)
    expect(existsSync(info.bindingDir)).toBe(true)
    expect(existsSync(join(info.bindingDir, 'onnxruntime_binding.node'))).toBe(true)
  })

  it('lists every provider the binding was built with; cpu is always there', () => {
    expect(info.backends.map((b) => b.name)).toEqual(ort.listSupportedBackends().map((b) => b.name))
    expect(info.backends.find((b) => b.name === 'cpu')).toEqual({ name: 'cpu', available: true, how: 'bundled in the onnxruntime-node package' })
  })

  it.skipIf(process.platform !== 'linux')('a provider that is not bundled is available exactly when its library is installed next to the binding', () => {
    for (const b of info.backends.filter((x) => !ort.listSupportedBackends().find((s) => s.name === x.name)!.bundled)) {
      const lib = join(info.bindingDir, `libonnxruntime_providers_${b.name}.so`)
      expect(b.available, b.name).toBe(existsSync(lib))
      expect(b.how).toContain(lib)
      if (!b.available) expect(b.how).toMatch(/onnxruntime-node-install=cuda12/)
    }
  })
})
