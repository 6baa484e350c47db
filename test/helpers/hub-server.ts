/**
 * The mock Hub in a process of its own (for the fetch benchmark: the server must not share an event loop
 * with the client it measures). Serves one repo, bench/huge, whose model.safetensors is `--size` bytes of
 * procedural content (never held in memory); its sha256 is computed once at startup. Prints one JSON line
 * {url, repo, commit, path, size, sha256} on stdout when ready and runs until killed.
 *
 *   node --import tsx test/helpers/hub-server.ts --size 1073741824
 */
import { MockHub, streamedContent } from './mock-hub.js'

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback
}

const size = Number(arg('size', String(1024 * 1024 * 1024)))
const content = streamedContent(size, 'modelforge-bench')
const hub = new MockHub()
const { commits } = hub.addRepo('bench/huge', [
  [
    { path: 'config.json', content: '{"model_type":"bert"}' },
    { path: 'model.safetensors', content },
  ],
])
const url = await hub.start()
process.stdout.write(JSON.stringify({ url, repo: 'bench/huge', commit: commits[0], path: 'model.safetensors', size, sha256: content.sha256 }) + '\n')
process.on('SIGTERM', () => {
  void hub.stop().then(() => process.exit(0))
})
