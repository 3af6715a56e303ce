// QKLab ui — the experiment panel: preset, data (synthetic task with its parameters, or a text
// file), tokenizer, model size, variants, optimiser and schedule, steps or epochs, evaluation,
// seeds; every other key in an editable table. Parameters, FLOPs per token and a memory estimate
// per variant update as you edit; invalid settings are named in red. Locked while training runs.
#pragma once
#include <QWidget>

#include "config.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;
class QTableWidget;

namespace qkui {

class ExperimentPanel : public QWidget {
  Q_OBJECT
 public:
  explicit ExperimentPanel(QWidget* parent = nullptr);
  void setConfig(const qk::ExperimentConfig& c);
  // The edited experiment; throws qk::Error naming the key when invalid.
  qk::ExperimentConfig config() const;
  void setLocked(bool locked);
  QString estimateText() const;

 public Q_SLOTS:
  // A text file, or a prepared tokens folder (the folder, or its train.bin / val.bin / meta.json).
  void setCorpus(const QString& path);
  // The tokens folder `path` names (itself, or the folder of its train.bin / val.bin / meta.json); "" if none.
  static QString tokensFolderOf(const QString& path);

 Q_SIGNALS:
  void applyRequested(const qk::ExperimentConfig& config);
  void notice(const QString& message);  // what the panel changed on its own, for the log

 private:
  void updateEstimates();
  void fillTable();
  qk::ExperimentConfig base_;
  QComboBox *preset_, *kind_, *tokenizer_;
  QLineEdit* path_;
  QSpinBox *layers_, *heads_, *dim_, *context_, *qk_, *steps_, *epochs_, *batch_, *eval_every_, *seeds_, *seed_, *warmup_;
  QDoubleSpinBox *lr_, *wd_, *clip_, *dropout_;
  QCheckBox *cosine_, *twin_, *causal_;
  std::vector<std::pair<qk::Variant, QCheckBox*>> variant_boxes_;  // from qk::all_variants()
  QTableWidget* table_;
  QLabel *estimates_, *error_;
  QPushButton* apply_;
  bool filling_ = false;
};

}  // namespace qkui
