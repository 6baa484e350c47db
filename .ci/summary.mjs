// Prints "N passed, N failed, N skipped" from vitest's JSON report; exits 1 when anything failed or the
// report is missing (a crash before the report is a failure too).
import { readFileSync } from 'node:fs'

const file = process.argv[2]
let report
try {
  report = JSON.parse(readFileSync(file, 'utf8'))
} catch (err) {
  console.log(`vitest wrote no readable report (${err.message})`)
  console.log('0 passed, 1 failed')
  process.exit(1)
}
const passed = report.numPassedTests ?? 0
// A failed test counts once; a test file that failed with no failed test in it (it did not load, or a
// beforeAll threw) counts as one failure more. numFailedTestSuites would count the file and each of its
// describe blocks again on top of the tests.
const brokenFiles = (report.testResults ?? []).filter(
  (file) => file.status === 'failed' && !(file.assertionResults ?? []).some((t) => t.status === 'failed'),
).length
const failed = (report.numFailedTests ?? 0) + brokenFiles
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0)
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(failed > 0 || passed === 0 ? 1 : 0)
