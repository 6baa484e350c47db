/**
 * trtexec's logger: `[MM/DD/YYYY-HH:MM:SS] [I] message` in local time, [I] and [V] on stdout, [W], [E] and
 * [F] on stderr, `[TRT] ` after the severity for messages from the TensorRT library itself, and the `&&&&`
 * test lines with no prefix on stdout. Every line is written synchronously, so stdout and stderr interleave
 * in the order a reader of both pipes sees from the real tool, and nothing is lost when the double kills
 * itself to play a crash.
 */
import { writeSync } from 'node:fs'

const pause = new Int32Array(new SharedArrayBuffer(4))

/**
 * Writes all of `text` to fd. A pipe node made non-blocking answers EAGAIN when the reader is slow; the
 * double then waits a millisecond and goes on, as a blocking write would, rather than lose lines.
 */
export function writeAll(fd: number, text: string): void {
  let buf = Buffer.from(text, 'utf8')
  while (buf.length > 0) {
    try {
      const n = writeSync(fd, buf)
      buf = buf.subarray(n)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err
      Atomics.wait(pause, 0, 0, 1)
    }
  }
}

export type Severity = 'I' | 'W' | 'E' | 'V'

function stamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0')
  return `[${p(d.getMonth() + 1)}/${p(d.getDate())}/${d.getFullYear()}-${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}]`
}

export class Log {
  verbose = false

  constructor(private readonly tag: string, private readonly commandLine: string) {}

  /** One message; a message with newlines gets a fresh prefix on each line, as each std::endl does. */
  line(severity: Severity, message = '', trt = false): void {
    if (severity === 'V' && !this.verbose) return
    const fd = severity === 'I' || severity === 'V' ? 1 : 2
    const text = message.split('\n').map((m) => `${stamp()} [${severity}] ${trt ? '[TRT] ' : ''}${m}\n`).join('')
    writeAll(fd, text)
  }

  info(message = ''): void { this.line('I', message) }
  warn(message: string): void { this.line('W', message) }
  error(message: string): void { this.line('E', message) }
  trtInfo(message: string): void { this.line('I', message, true) }
  trtWarn(message: string): void { this.line('W', message, true) }
  trtError(message: string): void { this.line('E', message, true) }

  /** Text with no prefix (the help, layer information bodies, the TensorRT builder's verbose tables). */
  raw(text: string, fd: 1 | 2 = 1): void {
    writeAll(fd, text)
  }

  banner(kind: 'RUNNING' | 'PASSED' | 'FAILED'): void {
    writeAll(1, `&&&& ${kind} ${this.tag} # ${this.commandLine}\n`)
  }
}
