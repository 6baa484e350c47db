import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { blobId, listRepoFiles, resolveRevision } from '../../src/hub/api.js'
import { HubHttp } from '../../src/hub/http.js'
import { MockHub } from '../helpers/mock-hub.js'

const realTree = readFileSync(new URL('../../fixtures/hub/tree_bert-base-uncased_dd4bc8b2.json', import.meta.url), 'utf8')
const realInfo = JSON.parse(readFileSync(new URL('../../fixtures/hub/api_models_google_bert_bert_base_uncased.json', import.meta.url), 'utf8')) as Record<string, unknown>

let server: Server
let url: string
beforeAll(async () => {
  // Serves the real recorded responses as they are.
  server = createServer((req, res) => {
    const body = req.url!.includes('/tree/') ? realTree : JSON.stringify(realInfo)
    res.writeHead(200, { 'Content-Type': 'application/json' })
    res.end(body)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((r) => server.close(() => r())))

describe('Hub API parsing with @huggingface/hub on real responses', () => {
  it('reads the commit of a revision and the listing with LFS sha256, git oids and xet hashes', async () => {
    const http = new HubHttp({ endpoint: url })
    expect(await resolveRevision(http, 'google-bert/bert-base-uncased', 'main')).toBe(realInfo.sha)
    const files = await listRepoFiles(http, 'google-bert/bert-base-uncased', 'dd4bc8b21efa05ec961e3efc4ee5e3832a3679c7')
    const bin = files.find((f) => f.path === 'pytorch_model.bin')!
    expect(bin).toMatchObject({ size: 440473133, oid: 'ba5d19791be1dd7992e33bd61f20207b0f7f50a5' })
    expect(blobId(bin)).toBe('097417381d6c7230bd9e3557456d726de6e83245ec8b24f529f60198a67b203a')
    expect(blobId(files.find((f) => f.path === 'vocab.txt')!)).toBe('fb140275c155a9c7c5a3b3e0e77a9e839594a938')
    expect(http.requests).toBe(2)
  })

  it("the mock's model info carries the real response's core fields with the same types", async () => {
    const hub = new MockHub()
    hub.addRepo('org/m', [[{ path: 'config.json', content: '{}' }]])
    await hub.start()
    try {
      const mock = (await (await fetch(`${hub.url}/api/models/org/m/revision/main`)).json()) as Record<string, unknown>
      for (const key of ['_id', 'id', 'modelId', 'sha', 'private', 'gated', 'lastModified', 'siblings', 'tags', 'pipeline_tag', 'library_name']) {
        expect(typeof mock[key], key).toBe(typeof realInfo[key])
      }
    } finally {
      await hub.stop()
    }
  })
})
