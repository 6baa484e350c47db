/**
 * trtexec's output, line by line, as the log parser reads it. Three kinds of line:
 *   &&&& RUNNING TensorRT.trtexec [TensorRT v101601] [b11] # trtexec --onnx=m.onnx     the banner (first and last)
 *   [07/07/2026-02:10:45] [I] [TRT] Engine generation completed in 7.41 seconds.       a logger message
 *   input: "onnx::Pad_22"                                                              anything else (raw)
 * Raw lines are the help text, layer and output dumps, the node a parser error prints after its [E] line,
 * and what does not go through trtexec's logger: libstdc++'s `terminate called ...`, `Cuda failure at ...`.
 */
import { parseBanner, type Banner } from './trtexec-version.js'

/** F fatal, E error, W warning, I info, V verbose. */
export type Severity = 'F' | 'E' | 'W' | 'I' | 'V'

export interface LogLine {
  /** 'raw' for a line that is neither a banner nor a logger message. */
  level: Severity | 'raw'
  /** The message after `[X] ` without the timestamp (a `[TRT] ` prefix kept), trimmed; a raw line trimmed. */
  text: string
  /**
   * For an [E] or [F] message: the raw lines printed right after it, which belong to it (an ONNX parser
   * error prints the node it failed on this way). Also present in the log as raw lines of their own.
   */
  more?: string[]
}

export interface ScannedLog {
  banners: Banner[]
  /** Messages and raw lines in the order they were written (blank lines left out). */
  lines: LogLine[]
}

// The timestamp is local time, printed by every logger line; optional so that a log someone stripped of
// timestamps still reads.
const MESSAGE = /^(?:\[\d\d\/\d\d\/\d{4}-\d\d:\d\d:\d\d\] )?\[([FEWIV])\](?: (.*))?$/

// A node dump or a doc string can be long; what classification needs is near the [E] line.
const MAX_MORE = 100

export function scanTrtexecLog(log: string): ScannedLog {
  const banners: Banner[] = []
  const lines: LogLine[] = []
  let open: LogLine | undefined
  for (const line of log.split(/\r?\n/)) {
    const banner = parseBanner(line)
    if (banner) {
      banners.push(banner)
      open = undefined
      continue
    }
    const m = MESSAGE.exec(line.trimEnd())
    if (m) {
      const level = m[1] as Severity
      const message: LogLine = { level, text: (m[2] ?? '').trim() }
      if (level === 'E' || level === 'F') message.more = []
      lines.push(message)
      open = message.more ? message : undefined
      continue
    }
    const text = line.trim()
    if (!text) continue
    lines.push({ level: 'raw', text })
    if (open?.more && open.more.length < MAX_MORE) open.more.push(text)
  }
  return { banners, lines }
}
