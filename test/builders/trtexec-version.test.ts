import { describe, expect, it } from 'vitest'
import { atLeast, parseBanner, parseVersionText, versionFromEncoded } from '../../src/builders/trtexec-version.js'

describe('trtexec banner', () => {
  it('reads the 10.x encoding and the build tag', () => {
    const b = parseBanner('&&&& RUNNING TensorRT.trtexec [TensorRT v101601] [b11] # trtexec --onnx=m.onnx')
    expect(b).toEqual({ kind: 'RUNNING', version: { major: 10, minor: 16, patch: 1, build: 11, encoded: 101601, text: '10.16.1' }, commandLine: 'trtexec --onnx=m.onnx' })
  })

  it('reads the 8.x encoding, without a build tag', () => {
    const b = parseBanner('&&&& PASSED TensorRT.trtexec [TensorRT v8601] # /usr/src/tensorrt/bin/trtexec --onnx=a.onnx')
    expect(b?.kind).toBe('PASSED')
    expect(b?.version).toEqual({ major: 8, minor: 6, patch: 1, encoded: 8601, text: '8.6.1' })
  })

  it('is undefined for any other line', () => {
    expect(parseBanner('[04/07/2025-23:59:33] [I] TensorRT version: 10.9.0')).toBeUndefined()
    expect(parseBanner('&&&& RUNNING TensorRT.other [TensorRT v8601] # x')).toBeUndefined()
  })

  it('11.x uses the 10.x encoding; 10.3.0 has no build tag', () => {
    expect(versionFromEncoded(110100).text).toBe('11.1.0')
    expect(parseBanner('&&&& RUNNING TensorRT.trtexec [TensorRT v100300] # /usr/src/tensorrt/bin/trtexec')?.version.text).toBe('10.3.0')
  })

  it('compares versions and parses version text', () => {
    const v = parseVersionText('10.12')!
    expect(v).toEqual({ major: 10, minor: 12, patch: 0, encoded: 101200, text: '10.12.0' })
    expect(atLeast(v, 10, 12)).toBe(true)
    expect(atLeast(v, 10, 13)).toBe(false)
    expect(atLeast(parseVersionText('8.6.1')!, 10)).toBe(false)
    expect(atLeast(parseVersionText('11.0')!, 10, 16)).toBe(true)
    expect(parseVersionText('ten')).toBeUndefined()
  })
})
