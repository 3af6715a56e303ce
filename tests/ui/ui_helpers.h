// QKLab UI tests — shared helpers: waiting on the event loop, a run folder as qklab-cli writes it,
// the first bytes of a file.
#pragma once
#include <cstdlib>
#include <QElapsedTimer>
#include <QFile>
#include <QString>
#include <QTest>
#include <catch2/catch.hpp>
#include <functional>

#include "main_window.h"
#include "presets.h"
#include "run_dir.h"
#include "trainer.h"

namespace qkt_ui {

using qkui::MainWindow;

// Waits for a state, never for a time: `ms` is only the give-up bound, and it is scaled by 5 (or by
// QKLAB_TEST_WAIT_SCALE) because a fresh CI machine compiling and testing on both cores runs the
// worker many times slower than a quiet one — "start / pause / step" once gave up there while
// passing alone. A passing wait returns as soon as its state holds, so the scale costs nothing.
inline bool wait_until(const std::function<bool()>& pred, int ms) {
  static const int scale = [] {
    const char* s = std::getenv("QKLAB_TEST_WAIT_SCALE");
    const int v = s ? std::atoi(s) : 0;
    return v > 0 ? v : 5;
  }();
  QElapsedTimer t;
  t.start();
  while (!pred()) {
    if (t.elapsed() > static_cast<qint64>(ms) * scale) return false;
    QTest::qWait(10);
  }
  return true;
}

inline QByteArray head_of(const QString& path, int n) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) return {};
  return f.read(n);
}

// A run folder as `qklab-cli train` writes it: the default preset for `steps` steps and `seeds` seeds.
inline void write_run(const QString& dir, int steps, int seeds) {
  auto c = qk::preset_config("default");
  c.train.steps = steps;
  c.train.eval_every = 10;
  c.train.seeds = seeds;
  qk::Experiment e(c);
  qk::RunWriter writer(dir.toStdString(), false);
  writer.write_config(e.config());
  e.run(&writer, nullptr);
  e.save_checkpoints(dir.toStdString());
}

inline void ready(MainWindow& w) { REQUIRE(wait_until([&] { return w.info().total_steps > 0; }, 20000)); }


}  // namespace qkt_ui
