/**
 * Crashes as TensorRT's crash: a segfault inside libnvinfer kills trtexec with SIGSEGV (the shell prints
 * "Segmentation fault (core dumped)", not trtexec), and an uncaught C++ exception prints libstdc++'s
 * "terminate called" lines and aborts (SIGABRT). The run's record is written first, since no handler runs
 * after the signal.
 */
import type { Run } from './context.js'
import { recordEnd } from './record.js'

export function crash(run: Run, how: 'crash' | 'abort'): never {
  if (how === 'abort') {
    run.log.raw("terminate called after throwing an instance of 'std::bad_alloc'\n  what():  std::bad_alloc\n", 2)
  }
  const signal = how === 'crash' ? 'SIGSEGV' : 'SIGABRT'
  recordEnd({ signal })
  process.kill(process.pid, signal)
  // The signal is delivered before the next tick; never reached.
  throw new Error(`${signal} was not delivered`)
}
