import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { selectPaths } from '../../src/hub/select.js'

const fixture = (name: string): { siblings: { rfilename: string }[] } =>
  JSON.parse(readFileSync(new URL(`../../fixtures/hub/${name}`, import.meta.url), 'utf8'))

describe('default file selection on real repositories', () => {
  it('sentence-transformers: configs, tokenizer, safetensors and every ONNX file; no other weights', () => {
    const paths = fixture('api_models_sentence_transformers_paraphrase_albert_small_v2.json').siblings.map((s) => s.rfilename)
    const picked = selectPaths(paths)
    expect(picked).toEqual([
      '1_Pooling/config.json',
      'config.json',
      'config_sentence_transformers.json',
      'model.safetensors',
      'modules.json',
      'onnx/model.onnx',
      'onnx/model_O1.onnx',
      'onnx/model_O2.onnx',
      'onnx/model_O3.onnx',
      'onnx/model_O4.onnx',
      'onnx/model_qint8_arm64.onnx',
      'onnx/model_qint8_avx512.onnx',
      'onnx/model_qint8_avx512_vnni.onnx',
      'onnx/model_quint8_avx2.onnx',
      'sentence_bert_config.json',
      'special_tokens_map.json',
      'spiece.model',
      'tokenizer.json',
      'tokenizer_config.json',
    ])
  })

  it('bert-base-uncased: skips Core ML, TF, Flax and Rust weights', () => {
    const paths = fixture('api_models_google_bert_bert_base_uncased.json').siblings.map((s) => s.rfilename)
    expect(selectPaths(paths)).toEqual(['config.json', 'model.onnx', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt'])
  })

  it('falls back to PyTorch .bin weights when the repo has no safetensors', () => {
    const tree = JSON.parse(readFileSync(new URL('../../fixtures/hub/tree_bert-base-uncased_dd4bc8b2.json', import.meta.url), 'utf8')) as { path: string }[]
    expect(selectPaths(tree.map((e) => e.path))).toEqual(['config.json', 'pytorch_model.bin', 'vocab.txt'])
  })

  it('--include replaces the default set; --exclude removes; bare patterns match in any folder', () => {
    const paths = ['config.json', '1_Pooling/config.json', 'onnx/model.onnx', 'onnx/model_O1.onnx', 'model.safetensors', 'README.md']
    expect(selectPaths(paths, { include: ['*.json'] })).toEqual(['1_Pooling/config.json', 'config.json'])
    expect(selectPaths(paths, { include: ['onnx/*.onnx'], exclude: ['*_O1.onnx'] })).toEqual(['onnx/model.onnx'])
    expect(selectPaths(paths, { exclude: ['onnx/**'] })).toEqual(['1_Pooling/config.json', 'config.json', 'model.safetensors'])
    expect(selectPaths(paths, { include: ['README.md'] })).toEqual(['README.md'])
  })
})
