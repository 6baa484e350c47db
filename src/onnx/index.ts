export * from './proto.js'
export * from './builder.js'
