// QKLab ui — what the training worker hands to the GUI thread: plain values, copied by value
// through queued signals. No torch here (moc reads this header).
#pragma once
#include <QMetaType>
#include <QString>
#include <QStringList>
#include <vector>

#include "config.h"
#include "observer.h"
#include "report_data.h"
#include "views.h"

namespace qkui {

struct TrainingSnapshot {
  std::vector<qk::StepRecord> steps;    // new since the previous snapshot
  std::vector<qk::EvalRecord> evals;    // new since the previous snapshot
  std::vector<qk::SampleRecord> samples;
  std::vector<qk::DivergenceRecord> divergence;
  std::vector<qk::SpectraRecord> spectra;
  std::vector<qk::HaltRecord> halts;    // variants the divergence guard stopped
  qint64 steps_done = 0, total_steps = 0;
  double tokens_per_s = 0;   // all variants together, over the last snapshot interval
  double seconds_per_step = 0;
  double eta_s = -1;
  bool running = false, finished = false;
};

struct ExperimentInfo {
  QStringList variants;
  std::vector<qint64> parameters;
  qint64 total_steps = 0;
  qk::ExperimentConfig config;         // resolved
  QString name, run_dir;               // run_dir: set when a run folder was opened
  QString save_dir;                    // where this live run is being saved
  bool resumable = false;              // run_dir holds a training state (File → Resume training)
  qint64 resumed_at = -1;              // a resumed run: the step its state was saved at
  QString resume_note;                 // what resuming had to repair (a damaged state or metrics.csv)
  int layers = 0, heads = 0, emb_dim = 0, head_dim = 0;
  int seed = 0;  // the seed of the models the analyses look at (the first)
  QList<int> seeds;  // a run folder's seeds with checkpoints
  bool text = false;
};

struct AnalysisResult {
  qint64 step = -1;  // optimiser steps of the models the analyses were computed on
  int seed = 0;      // and their seed
  std::vector<qk::AttentionView> attention;
  std::vector<qk::SpectrumView> spectra;
  std::vector<qk::TruncationView> truncation;
  std::vector<qk::SampleView> samples;
  std::vector<qk::GeometryView> geometry;
  std::vector<qk::EsdRecord> esd;
  std::vector<qk::CircuitsView> circuits;
  std::vector<qk::AblationView> ablation;
  std::vector<qk::LogitLensView> logit_lens;
  std::vector<qk::AttributionView> attribution;
  std::vector<qk::DetectorView> detectors;
  QString attention_prompt;  // the prompt `attention` was computed for
};

}  // namespace qkui

Q_DECLARE_METATYPE(qkui::TrainingSnapshot)
Q_DECLARE_METATYPE(qkui::ExperimentInfo)
Q_DECLARE_METATYPE(qkui::AnalysisResult)
Q_DECLARE_METATYPE(qk::ReportData)
Q_DECLARE_METATYPE(qk::ExperimentConfig)
