import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { isLiteral, selectPaths } from '../../src/hub/select.js'

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
    // A trailing "/" is the whole folder, as in huggingface_hub's allow_patterns.
    expect(selectPaths([...paths, 'onnx/sub/x.onnx'], { include: ['onnx/'] })).toEqual(['onnx/model.onnx', 'onnx/model_O1.onnx', 'onnx/sub/x.onnx'])
    expect(selectPaths(paths, { exclude: ['onnx/'] })).toEqual(['1_Pooling/config.json', 'config.json', 'model.safetensors'])
    expect([isLiteral('config.json'), isLiteral('onnx/'), isLiteral('*.json')]).toEqual([true, false, false])
  })

  it('default set: sharded safetensors with their index, sentence-transformers modules, ONNX with external data', () => {
    const paths = [
      '.gitattributes',
      'README.md',
      'config.json',
      'model.safetensors.index.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'pytorch_model.bin',
      'modules.json',
      '1_Pooling/config.json',
      '2_Dense/model.safetensors',
      'onnx/model.onnx',
      'onnx/model.onnx_data',
      'onnx/decoder_model_merged.onnx',
      'onnx/decoder_model_merged.onnx_data_1',
      'model.onnx.data',
      'tokenizer.model',
      'merges.txt',
      'vocab.json',
      'openvino/openvino_model.xml',
      'openvino/openvino_config.json',
      'tf_model.h5',
      'flax_model.msgpack',
    ]
    expect(selectPaths(paths)).toEqual([
      '1_Pooling/config.json',
      '2_Dense/model.safetensors',
      'config.json',
      'merges.txt',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.onnx.data',
      'model.safetensors.index.json',
      'modules.json',
      'onnx/decoder_model_merged.onnx',
      'onnx/decoder_model_merged.onnx_data_1',
      'onnx/model.onnx',
      'onnx/model.onnx_data',
      'tokenizer.model',
      'vocab.json',
    ])
  })

  it('an included ONNX model brings its external data along, unless excluded', () => {
    const paths = ['onnx/model.onnx', 'onnx/model.onnx_data', 'onnx/model_fp16.onnx', 'onnx/model_fp16.onnx_data', 'model.onnx', 'model.onnx.data']
    expect(selectPaths(paths, { include: ['onnx/model.onnx'] })).toEqual(['onnx/model.onnx', 'onnx/model.onnx_data'])
    expect(selectPaths(paths, { include: ['model.onnx'] })).toEqual(['model.onnx', 'model.onnx.data', 'onnx/model.onnx', 'onnx/model.onnx_data'])
    expect(selectPaths(paths, { include: ['onnx/model.onnx'], exclude: ['*.onnx_data'] })).toEqual(['onnx/model.onnx'])
  })
})
