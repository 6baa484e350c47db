import { Flags } from '@oclif/core'
import { doctor, formatDoctor, type DoctorReport } from '../builders/doctor.js'
import { BaseCommand, resolveStore, storeFlag } from '../lib/base-command.js'
import { hubCacheDir, timingCacheDir } from '../lib/env.js'

export default class Doctor extends BaseCommand {
  static summary = 'Show what this machine has for modelforge: trtexec, GPUs, onnxruntime providers, store and cache health'
  static description = `Finds trtexec as build does (--trtexec, TRTEXEC, PATH, /usr/src/tensorrt/bin/trtexec) and reads its TensorRT version; lists the GPUs nvidia-smi reports; names the onnxruntime-node version and the execution providers its binding offers (bundled, or installed provider libraries); checks that the store, the Hugging Face cache and the timing-cache directory exist or can be created, and can be written; looks for optimum-cli on PATH.

It reports, and does not fail for what is missing: no GPU or no trtexec is exit 0, with each missing piece and how to get it under "Missing:". See docs/doctor.md.`
  static examples = [
    '<%= config.bin %> doctor',
    '<%= config.bin %> doctor --trtexec /opt/tensorrt-10.16/bin/trtexec --store /srv/model-store --json',
  ]
  static flags = {
    trtexec: Flags.string({ description: 'the trtexec to check [default: $TRTEXEC, else trtexec on PATH, else /usr/src/tensorrt/bin/trtexec]', helpValue: '<path>' }),
    store: storeFlag,
  }

  async run(): Promise<DoctorReport> {
    const { flags } = await this.parse(Doctor)
    const report = await doctor({
      trtexecFlag: flags.trtexec,
      storeRoot: resolveStore(flags.store),
      hubCache: hubCacheDir(),
      timingCacheDir: timingCacheDir(),
    })
    this.say(formatDoctor(report))
    return report
  }
}
