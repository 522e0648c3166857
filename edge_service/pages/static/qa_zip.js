// A small zip writer for the training page: a picked folder goes up as one zip. Members are stored, not
// compressed (images are compressed already); no zip64, so under 4 GB and 65,535 files.
window.qaZip = (() => {
  const table = new Uint32Array(256).map((_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });

  function crc32(bytes) {
    let c = 0xffffffff;
    for (let i = 0; i < bytes.length; i++) c = table[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  }

  function record(size, fields) {  // fields: [offset, bytes (2 or 4), value]
    const v = new DataView(new ArrayBuffer(size));
    for (const [at, width, value] of fields) if (width === 2) v.setUint16(at, value, true); else v.setUint32(at, value, true);
    return v;
  }

  // entries: [{ name: "folder/file.png", file: File }]; onProgress(done, total) while it reads them
  async function zip(entries, onProgress) {
    if (entries.length > 65535) throw new Error(entries.length + " files: the page zips at most 65,535; upload a zip instead");
    const parts = [], central = [], enc = new TextEncoder();
    let offset = 0;
    for (const [i, { name, file }] of entries.entries()) {
      const data = new Uint8Array(await file.arrayBuffer());
      const crc = crc32(data), n = enc.encode(name), size = data.length;
      // version 2.0, UTF-8 names (bit 11), stored, time 00:00 on 1980-01-01
      const common = [[8, 2, 0x0800], [10, 2, 0], [12, 2, 0], [14, 2, 0x21], [16, 4, crc], [20, 4, size], [24, 4, size], [28, 2, n.length]];
      parts.push(record(30, [[0, 4, 0x04034b50], [4, 2, 20], ...common.map(([at, w, v]) => [at - 2, w, v])]), n, file);
      central.push(record(46, [[0, 4, 0x02014b50], [4, 2, 20], [6, 2, 20], ...common, [42, 4, offset]]), n);
      offset += 30 + n.length + size;
      if (offset >= 2 ** 32) throw new Error("the folder is 4 GB or more: the page cannot zip it; upload a zip instead");
      if (onProgress) onProgress(i + 1, entries.length);
    }
    const cdSize = central.reduce((s, p) => s + p.byteLength, 0);
    const end = record(22, [[0, 4, 0x06054b50], [8, 2, entries.length], [10, 2, entries.length], [12, 4, cdSize], [16, 4, offset]]);
    return new Blob([...parts, ...central, end], { type: "application/zip" });
  }

  return { zip, crc32 };
})();
