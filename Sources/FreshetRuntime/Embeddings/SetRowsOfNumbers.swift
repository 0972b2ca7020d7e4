import FreshetEmbeddings

/// Interned item numbers (a user store's, or an item task's co-occurrence
/// rows') -> the row of that item's vector in an `ItemVectorSet` (-1: none).
/// Built once per set and extended as the numbering interns new ids, so a
/// mean or a fold-in reads an array per item instead of hashing its id into
/// `ItemVectorSet.rowOf` (a sync after a small first refresh folds in most
/// items of a partition; a switch rewrites every user).
struct SetRowsOfNumbers {
    /// Row of number k in the set (-1: no vector); numbers past the end: not mapped yet.
    private(set) var rows: [Int32] = []
    private var key: Key?

    /// What `rows` was built for: the numbering's owner and the set (its
    /// version, and its size: fold-ins appended to a set add rows).
    private struct Key: Equatable {
        let numbering: ObjectIdentifier
        let version: Int64
        let count: Int
    }

    /// Maps numbers `0..<interned` of `numbering` to rows of `set`
    /// (rebuilt when the numbering or the set changed, else only the new
    /// numbers). `id(k)` is number k's item id.
    mutating func update(_ set: ItemVectorSet, numbering: AnyObject, interned: Int, id: (UInt32) -> ByteId) {
        let current = Key(numbering: ObjectIdentifier(numbering), version: set.version, count: set.count)
        if key != current {
            key = current
            rows.removeAll(keepingCapacity: true)
        }
        guard rows.count < interned else { return }
        rows.reserveCapacity(interned)
        for k in rows.count..<interned {
            rows.append(set.rowOf[id(UInt32(k))].map { Int32($0) } ?? -1)
        }
    }
}
