import { describe, expect, it } from 'vitest'
import { scanTrtexecLog } from '../../src/builders/trtexec-lines.js'

describe('scanTrtexecLog', () => {
  it('splits banners, logger messages (timestamp dropped, [TRT] kept) and raw lines', () => {
    const { banners, lines } = scanTrtexecLog(
      [
        '&&&& RUNNING TensorRT.trtexec [TensorRT v101601] [b11] # trtexec --onnx=m.onnx',
        '[07/07/2026-02:10:45] [I] [TRT] Input filename:   m.onnx   ',
        'Layer(Myelin): {ForeignNode[node_conv2d...node_relu]}, Tactic: 0x0000000000000000',
        '',
        '[07/07/2026-02:10:58] [W]   If not already in use, locking GPU clock frequency may improve the stability.',
        '&&&& PASSED TensorRT.trtexec [TensorRT v101601] [b11] # trtexec --onnx=m.onnx',
      ].join('\n'),
    )
    expect(banners.map((b) => b.kind)).toEqual(['RUNNING', 'PASSED'])
    expect(lines).toEqual([
      { level: 'I', text: '[TRT] Input filename:   m.onnx' },
      { level: 'raw', text: 'Layer(Myelin): {ForeignNode[node_conv2d...node_relu]}, Tactic: 0x0000000000000000' },
      { level: 'W', text: 'If not already in use, locking GPU clock frequency may improve the stability.' },
    ])
  })

  it('gives an [E] message the raw lines printed right after it (the node of a parser error), CRLF or not', () => {
    const { lines } = scanTrtexecLog(
      '[06/10/2022-17:18:52] [E] [TRT] ModelImporter.cpp:782: input: "input"\r\nname: "Pad_13"\r\n\r\nop_type: "Pad"\r\n[06/10/2022-17:18:52] [I] Finish parsing network model\r\nafter: "info"\r\n',
    )
    expect(lines[0]).toEqual({ level: 'E', text: '[TRT] ModelImporter.cpp:782: input: "input"', more: ['name: "Pad_13"', 'op_type: "Pad"'] })
    expect(lines.filter((l) => l.level === 'raw').map((l) => l.text)).toEqual(['name: "Pad_13"', 'op_type: "Pad"', 'after: "info"'])
    expect(lines.find((l) => l.level === 'I')?.more).toBeUndefined()
  })

  it('reads messages without a timestamp, and an empty message', () => {
    expect(scanTrtexecLog('[F] fatal\n[V]\n[X] not a level').lines).toEqual([
      { level: 'F', text: 'fatal', more: [] },
      { level: 'V', text: '' },
      { level: 'raw', text: '[X] not a level' },
    ])
  })
})
