import { describe, expect, it } from 'vitest'
import { parseRepoId } from '../../src/hub/repo-id.js'
import { validateRepoId } from '../../src/hub/cache.js'

describe('parseRepoId', () => {
  it('reads namespace/name, and a canonical name alone', () => {
    expect(parseRepoId('google-bert/bert-base-uncased')).toEqual({ namespace: 'google-bert', name: 'bert-base-uncased', id: 'google-bert/bert-base-uncased' })
    expect(parseRepoId('gpt2')).toEqual({ name: 'gpt2', id: 'gpt2' })
    expect(parseRepoId('Org_1/model.v2')).toEqual({ namespace: 'Org_1', name: 'model.v2', id: 'Org_1/model.v2' })
    expect(() => validateRepoId('bert-base-uncased')).not.toThrow()
  })

  it('refuses what the Hub refuses, and what could escape or confuse the cache, with INVALID_REPO_ID (exit 2)', () => {
    for (const bad of ['', '/abs', '../x', './x', 'a/b/c', 'a--b/c', 'a/b..c', 'org/name.git', '-x', 'org/', '/name', 'has space', 'a\\b', 'x'.repeat(97)]) {
      expect(() => parseRepoId(bad), bad).toThrow(expect.objectContaining({ code: 'INVALID_REPO_ID', exitCode: 2, message: `Invalid repo id "${bad}"` }))
      expect(() => validateRepoId(bad), bad).toThrow(expect.objectContaining({ code: 'INVALID_REPO_ID' }))
    }
    expect(parseRepoId('x'.repeat(96)).name).toHaveLength(96)
  })
})
