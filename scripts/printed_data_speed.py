"""How fast the printed-text data renders (docs/data.md quotes its output):

    python scripts/printed_data_speed.py

Images per second of nnlite.data.PrintedWords through the DataLoader at
batch 32 (40 batches after 4 warm-up batches, which also fill the glyph
cache), in the consumer's thread at three augmentation strengths and with
1 and 2 worker processes at full strength; then the time to render the
whole unseen-fonts benchmark. A GPU step of the seed CRNN at batch 32 takes
about 0.1 s on an H100 (the lead's figure), so it needs about 320 images/s."""
import os
import time

from nnlite.data import DataLoader, PrintedWords, UnseenFontsBenchmark


def rate(dataset, **loader):
    batches = iter(DataLoader(dataset, batch_size=32, shuffle=False, **loader))
    for _ in range(4):
        next(batches)
    start = time.perf_counter()
    for _ in range(40):
        next(batches)
    return 40 * 32 / (time.perf_counter() - start)


def main():
    print(f"{os.cpu_count()} CPUs; load average before: "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for strength in (0.0, 0.5, 1.0):
        images_per_s = rate(PrintedWords(10 ** 6, seed=1, strength=strength), prefetch=0)
        print(f"strength {strength}: in the consumer's thread: {images_per_s:.0f} images/s")
    for workers in (1, 2):
        images_per_s = rate(PrintedWords(10 ** 6, seed=1), prefetch=2 * workers,
                            workers=workers, worker_type="process")
        print(f"strength 1.0: {workers} worker process(es): {images_per_s:.0f} images/s")
    start = time.perf_counter()
    bench = UnseenFontsBenchmark()
    for index in range(len(bench)):
        bench[index]
    print(f"unseen-fonts benchmark: {len(bench)} words rendered in "
          f"{time.perf_counter() - start:.1f} s")
    print(f"load average after: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
