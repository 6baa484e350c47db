import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir, homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { hubCacheDir, hubEndpoint, hubOffline, hubToken, loadConfig, modelforgeCacheDir, plainOutput, storeRoot, strictStore, timingCacheDir } from '../../src/lib/env.js'

describe('env', () => {
  it('resolves the store root: flag, then MODEL_STORE_ROOT, then ./model-store', () => {
    expect(storeRoot('/a', { MODEL_STORE_ROOT: '/b' })).toBe('/a')
    expect(storeRoot(undefined, { MODEL_STORE_ROOT: '/b' })).toBe('/b')
    expect(storeRoot(undefined, {})).toBe(resolve('model-store'))
  })

  it('reads STRICT_MODEL_STORE and HF_HUB_OFFLINE as booleans', () => {
    expect(strictStore({ STRICT_MODEL_STORE: '1' })).toBe(true)
    expect(strictStore({ STRICT_MODEL_STORE: '0' })).toBe(false)
    expect(strictStore({})).toBe(false)
    expect(hubOffline({ HF_HUB_OFFLINE: 'true' })).toBe(true)
    expect(hubOffline({ HF_HUB_OFFLINE: 'false' })).toBe(false)
  })

  it('finds the Hugging Face cache as huggingface_hub does', () => {
    expect(hubCacheDir('/x', { HF_HUB_CACHE: '/y' })).toBe('/x')
    expect(hubCacheDir(undefined, { HF_HUB_CACHE: '/y', HF_HOME: '/z' })).toBe('/y')
    expect(hubCacheDir(undefined, { HF_HOME: '/z' })).toBe('/z/hub')
    expect(hubCacheDir(undefined, {})).toBe(join(homedir(), '.cache', 'huggingface', 'hub'))
  })

  it("finds modelforge's cache and the timing caches in it: MODELFORGE_CACHE, else XDG_CACHE_HOME/modelforge, else ~/.cache/modelforge", () => {
    expect(modelforgeCacheDir({ MODELFORGE_CACHE: '/c', XDG_CACHE_HOME: '/x' })).toBe('/c')
    expect(modelforgeCacheDir({ XDG_CACHE_HOME: '/x' })).toBe('/x/modelforge')
    expect(modelforgeCacheDir({})).toBe(join(homedir(), '.cache', 'modelforge'))
    expect(timingCacheDir(undefined, { MODELFORGE_CACHE: '/c' })).toBe('/c/timing-cache')
    expect(timingCacheDir(undefined, { XDG_CACHE_HOME: '/x' })).toBe('/x/modelforge/timing-cache')
    expect(timingCacheDir(undefined, {})).toBe(join(homedir(), '.cache', 'modelforge', 'timing-cache'))
    // A flag wins, "~" is the home directory and a relative path is taken from the working directory.
    expect(timingCacheDir('~/tc', { MODELFORGE_CACHE: '/c' })).toBe(join(homedir(), 'tc'))
    expect(timingCacheDir('tc', {})).toBe(resolve('tc'))
    expect(modelforgeCacheDir({ MODELFORGE_CACHE: '~/mf' })).toBe(join(homedir(), 'mf'))
  })

  it('reads the endpoint and the token', () => {
    expect(hubEndpoint({ HF_ENDPOINT: 'http://127.0.0.1:9/' })).toBe('http://127.0.0.1:9')
    expect(hubEndpoint({})).toBe('https://huggingface.co')
    expect(hubToken('flag', { HF_TOKEN: 'env' })).toBe('flag')
    expect(hubToken(undefined, { HF_TOKEN: 'env' })).toBe('env')
    expect(hubToken(undefined, {})).toBeUndefined()
  })

  it('is plain when not a TTY, under CI, or with NO_COLOR', () => {
    expect(plainOutput({}, { isTTY: false })).toBe(true)
    expect(plainOutput({ CI: 'true' }, { isTTY: true })).toBe(true)
    expect(plainOutput({ NO_COLOR: '' }, { isTTY: true })).toBe(true)
    expect(plainOutput({}, { isTTY: true })).toBe(false)
  })

  describe('loadConfig', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mf-config-'))

    it('returns defaults without MODELFORGE_CONFIG', () => {
      expect(loadConfig({})).toEqual({})
    })

    it('reads a JSON file', () => {
      const file = join(dir, 'ok.json')
      writeFileSync(file, JSON.stringify({ download: { allowedSources: ['org/*'] } }))
      expect(loadConfig({ MODELFORGE_CONFIG: file })).toEqual({ download: { allowedSources: ['org/*'] } })
    })

    it('store.legacyChecksum is true or false, named by its key when it is not', () => {
      const file = join(dir, 'legacy.json')
      writeFileSync(file, JSON.stringify({ store: { legacyChecksum: true } }))
      expect(loadConfig({ MODELFORGE_CONFIG: file })).toEqual({ store: { legacyChecksum: true } })
      writeFileSync(file, JSON.stringify({ store: { legacyChecksum: 'yes' } }))
      expect(() => loadConfig({ MODELFORGE_CONFIG: file })).toThrow(`store.legacyChecksum in MODELFORGE_CONFIG file ${file} must be true or false, got "yes"`)
    })

    it('refuses a missing file (exit 2: the variable is wrong) and a broken or non-object one (exit 4: the file is)', () => {
      expect(() => loadConfig({ MODELFORGE_CONFIG: join(dir, 'missing.json') })).toThrow(/MODELFORGE_CONFIG names .*missing\.json, which does not exist/)
      const broken = join(dir, 'broken.json')
      writeFileSync(broken, '{ nope')
      expect(() => loadConfig({ MODELFORGE_CONFIG: broken })).toThrow(/not valid JSON/)
      const list = join(dir, 'list.json')
      writeFileSync(list, '[]')
      try {
        loadConfig({ MODELFORGE_CONFIG: list })
        expect.unreachable()
      } catch (err) {
        expect((err as { exitCode: number; code: string }).exitCode).toBe(4)
        expect((err as { code: string }).code).toBe('CONFIG_INVALID')
        expect((err as Error).message).toMatch(/JSON object/)
      }
    })
  })
})
