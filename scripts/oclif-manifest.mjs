// Writes oclif.manifest.json after the build, as `oclif manifest` does, so that oclif loads only the
// command being run instead of importing every command file (and onnxruntime, protobufjs...) at start-up.
// The oclif CLI package would do the same but brings hundreds of dependencies; @oclif/core has what we need.
import { writeFileSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Config } from '@oclif/core'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const file = join(root, 'oclif.manifest.json')
// A stale manifest would be read back instead of the commands just built.
rmSync(file, { force: true })
const config = await Config.load({ root, ignoreManifest: true, errorOnManifestCreate: true })
const plugin = config.getPluginsList().find((p) => p.root === config.root) ?? config.plugins.get(config.pjson.name)
const manifest = plugin.manifest
const count = Object.keys(manifest.commands).length
if (count === 0) throw new Error('oclif found no commands in dist/commands: did the build run?')
writeFileSync(file, JSON.stringify(manifest, null, 2) + '\n')
console.log(`oclif.manifest.json: ${count} commands`)
