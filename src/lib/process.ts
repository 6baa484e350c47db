import { errnoCode } from './errors.js'

/**
 * Whether a process of this host may still be running. Signal 0 checks existence without signalling;
 * EPERM means it exists under another user. Lock files of the store and the hub cache use this to take
 * over what a killed process left.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return errnoCode(err) === 'EPERM'
  }
}
