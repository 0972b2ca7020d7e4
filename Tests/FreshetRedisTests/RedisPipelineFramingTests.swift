@testable import FreshetRedis
import XCTest

/// Building commands from runs of another command's encoding
/// (`RedisCommand.withArgumentRanges`, `RedisPipeline.beginCommand` ...):
/// the bytes equal those of the same commands built argument by argument.
final class RedisPipelineFramingTests: XCTestCase {
    func testArgumentRangesLocateEveryArgumentFromTheFirstAsked() {
        var command = RedisCommand("EVALSHA")
        command.append("sha")
        command.append([UInt8]([0, 13, 10, 255]))
        command.append("")
        let ranges = command.withArgumentRanges(from: 1) { bytes, ranges in
            ranges.map { (Array(bytes[$0.content]), Array(bytes[$0.encoded])) }
        }
        XCTAssertEqual(ranges.map(\.0), [Array("sha".utf8), [0, 13, 10, 255], []])
        XCTAssertEqual(ranges.map(\.1), [Array("$3\r\nsha\r\n".utf8), Array("$4\r\n".utf8) + [0, 13, 10, 255] + [13, 10], Array("$0\r\n\r\n".utf8)])
    }

    func testTheArgumentReaderWalksTheSameRangesAndStopsAtTheEnd() {
        var command = RedisCommand("EVALSHA")
        for argument in ["sha", "1", "", "H", "user:1", "2", "f", "v\r\n", "g", String(repeating: "x", count: 1_234)] {
            command.append(argument)
        }
        command.append([UInt8]([0, 13, 10, 255]))
        let expected = command.withArgumentRanges(from: 2) { _, ranges in ranges }
        let (read, count, skipped, skippedTooFar) = command.withArgumentReader(from: 2) { _, reader -> ([RedisCommand.ArgumentRange], Int, Bool, Bool) in
            var read: [RedisCommand.ArgumentRange] = []
            while let range = reader.next() { read.append(range) }
            return (read, reader.count, reader.skip(0), reader.skip(1))
        }
        XCTAssertEqual(read, expected)
        XCTAssertEqual(count, 12)
        XCTAssertTrue(skipped)
        XCTAssertFalse(skippedTooFar)
        let afterSkip = command.withArgumentReader(from: 0) { bytes, reader -> (Bool, [UInt8]?, Int) in
            let skipped = reader.skip(6)
            return (skipped, reader.next().map { Array(bytes[$0.content]) }, reader.position)
        }
        XCTAssertTrue(afterSkip.0)
        XCTAssertEqual(afterSkip.1, Array("2".utf8))
        XCTAssertEqual(afterSkip.2, expected[4].encoded.upperBound)
    }

    func testACommandFramedFromEncodedRunsEqualsOneBuiltArgumentByArgument() {
        var source = RedisCommand("X")
        for argument in ["key", "f1", "v1", "f2", "v\r\n2"] { source.append(argument) }
        var framed = RedisPipeline()
        source.withArgumentRanges(from: 1) { bytes, ranges in
            framed.beginCommand(argumentCount: 6)
            framed.appendArgument("HSET")
            framed.appendEncodedArguments(bytes[ranges[0].encoded])
            framed.appendEncodedArguments(bytes[ranges[1].encoded.lowerBound..<ranges[4].encoded.upperBound])
            framed.endCommand()
        }
        framed.beginCommand(argumentCount: 2)
        framed.appendArgument("DEL")
        framed.appendArgument(String("key"))
        framed.endCommand()
        let expected = RedisPipeline([RedisCommand("HSET", "key", "f1", "v1", "f2", "v\r\n2"), RedisCommand("DEL", "key")])
        XCTAssertEqual(framed.buffer, expected.buffer)
        XCTAssertEqual(framed.commands.map(\.arguments), expected.commands.map(\.arguments))

        var truncated = framed
        truncated.truncate(toCount: 1)
        XCTAssertEqual(truncated.commands.map(\.arguments), [expected.commands[0].arguments])
        truncated.truncate(toCount: 0)
        XCTAssertTrue(truncated.isEmpty)
        XCTAssertEqual(truncated.byteCount, 0)
    }

    /// Integer arguments framed in a pipeline encode as `RedisCommand`'s do (one decimal encoder).
    func testIntegerArgumentsEncodeAsACommandsDo() {
        let values = [0, 7, -1, -101, 1_000_000, Int.max, Int.min]
        var framed = RedisPipeline()
        var expected = RedisCommand("ZREMRANGEBYRANK")
        framed.beginCommand(argumentCount: 1 + values.count)
        framed.appendArgument("ZREMRANGEBYRANK")
        for value in values {
            framed.appendArgument(value)
            expected.append(value)
        }
        framed.endCommand()
        XCTAssertEqual(framed.buffer, RedisPipeline([expected]).buffer)
        XCTAssertEqual(framed.commands.first?.arguments.dropFirst().map { String(decoding: $0, as: UTF8.self) },
                       values.map(String.init))
    }
}
