import { describe, expect, it } from 'vitest';
import { checkpoints, densityFlags } from '../../bench/density.js';
import { FlagError } from '../../bench/report.js';

describe('density bench flags', () => {
  it('defaults to the issue\'s scale: 100 awake of 1,000 registered', () => {
    expect(densityFlags([])).toEqual({ awake: 100, registered: 1000 });
  });

  it('takes a smaller scale', () => {
    expect(densityFlags(['--awake', '10', '--registered', '60'])).toEqual({ awake: 10, registered: 60 });
    expect(densityFlags(['--awake=3', '--registered=3'])).toEqual({ awake: 3, registered: 3 });
  });

  it.each([
    [['--awake', '0'], '--awake takes a whole number of at least 1; got "0"'],
    [['--awake', '2.5'], '--awake takes a whole number of at least 1; got "2.5"'],
    [['--registered', 'many'], '--registered takes a whole number of at least 1; got "many"'],
    [['--awake', '20', '--registered', '10'], '--registered (10) counts the awake tenants too: it must be at least --awake (20)'],
  ])('refuses %j', (args, message) => {
    expect(() => densityFlags(args)).toThrow(new FlagError(message));
  });

  it('refuses flags it does not know, and words', () => {
    expect(() => densityFlags(['--asleep', '5'])).toThrow(FlagError);
    expect(() => densityFlags(['10'])).toThrow(FlagError);
  });
});

describe('where create → usable is read', () => {
  it('at 100 tenants: the first, middle and last ten', () => {
    expect(checkpoints(100)).toEqual([
      { from: 0, to: 10, label: 'tenants 1–10' },
      { from: 45, to: 55, label: 'tenants 46–55' },
      { from: 90, to: 100, label: 'tenants 91–100' },
    ]);
  });

  it('below 20 tenants: single tenants, the middle one of the lower half', () => {
    expect(checkpoints(10)).toEqual([
      { from: 0, to: 1, label: 'tenant 1' },
      { from: 4, to: 5, label: 'tenant 5' },
      { from: 9, to: 10, label: 'tenant 10' },
    ]);
  });

  it('no window twice when there are too few tenants for three', () => {
    expect(checkpoints(1)).toEqual([{ from: 0, to: 1, label: 'tenant 1' }]);
    expect(checkpoints(2)).toEqual([{ from: 0, to: 1, label: 'tenant 1' }, { from: 1, to: 2, label: 'tenant 2' }]);
  });

  it('windows stay inside the tenants made', () => {
    for (let n = 1; n <= 250; n++) {
      for (const w of checkpoints(n)) {
        expect(w.from).toBeGreaterThanOrEqual(0);
        expect(w.to).toBeLessThanOrEqual(n);
        expect(w.to).toBeGreaterThan(w.from);
      }
    }
  });
});
