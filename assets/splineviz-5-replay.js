/*
 * Playback of recorded frames: one frame per 1000/fps ms at most, and never faster than the frames are
 * painted: show(i) may return a promise (the painter's), and the next frame waits for it, so a slow machine
 * or a large partition plays at its own pace instead of queueing frames. A frame that took longer than the
 * interval is followed at once when its promise settles, not at the next animation frame (up to 16.7 ms
 * later: 40 ms paints played at 20 fps instead of 25). What a frame looks like is the caller's business
 * (show); the player only keeps time.
 */
(function () {
  "use strict";
  const sv = window.splineviz;

  class Replay {
    constructor(fps) {
      // whole milliseconds: at 60 Hz two paints are 33.3 ms apart, and a threshold of 33.33 would often wait
      // for a third, dropping 30 fps to about 22
      this.interval = Math.floor(1000 / (fps || 30));
      this.handle = null;
      this.index = 0;
      this.onStop = null;
      this.run = null;  // the current start()'s token
    }

    get playing() {
      return this.handle !== null;
    }

    /* Show frames from+1 .. count-1 with show(i); then, or on stop(), call onStop(last index shown). */
    start(from, count, show, onStop) {
      this.stop(false);
      this.index = from >= count - 1 ? 0 : from;
      this.onStop = onStop;
      let last = 0, busy = false;
      const run = (this.run = {});  // a paint that settles after a stop (and a new start) must not advance this one
      const advance = (now) => {
        if (this.handle === null || this.run !== run || busy || now - last < this.interval) return;
        last = now;
        if (this.index >= count - 1) { this.stop(true); return; }
        this.index += 1;
        const shown = show(this.index);
        if (shown && typeof shown.then === "function") {
          busy = true;
          const settled = () => { busy = false; advance(performance.now()); };
          shown.then(settled, settled);
        }
      };
      const step = (now) => {
        if (this.handle === null || this.run !== run) return;
        advance(now);
        if (this.handle !== null && this.run === run) this.handle = requestAnimationFrame(step);
      };
      this.handle = requestAnimationFrame(step);
    }

    /* Stop playing; notify: call onStop (false when a new view replaces the replay anyway). */
    stop(notify) {
      if (this.handle === null) return;
      cancelAnimationFrame(this.handle);
      this.handle = null;
      if (notify && this.onStop) this.onStop(this.index);
    }
  }

  sv.Replay = Replay;
})();
