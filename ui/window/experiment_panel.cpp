// QKLab ui — experiment panel (see experiment_panel.h).
#include "experiment_panel.h"

#include "names.h"
#include "tokenizer_factory.h"
#include "variants.h"

#include <QCheckBox>
#include <QGridLayout>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <QVBoxLayout>
#include <nlohmann/json.hpp>

#include "error.h"
#include "budget.h"
#include "estimates.h"
#include "presets.h"

namespace qkui {
namespace {
QSpinBox* spin(QWidget* p, int lo, int hi) {
  auto* s = new QSpinBox(p);
  s->setRange(lo, hi);
  return s;
}
QDoubleSpinBox* dspin(QWidget* p, double lo, double hi, int decimals, double step) {
  auto* s = new QDoubleSpinBox(p);
  s->setRange(lo, hi);
  s->setDecimals(decimals);
  s->setSingleStep(step);
  return s;
}
QString human(double v, const char* unit) {
  const char* prefix[] = {"", "k", "M", "G", "T", "P"};
  int i = 0;
  while (v >= 1000 && i < 5) { v /= 1000; ++i; }
  return QString("%1 %2%3").arg(v, 0, 'f', v < 10 ? 2 : 1).arg(prefix[i]).arg(unit);
}
}  // namespace

ExperimentPanel::ExperimentPanel(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* form = new QFormLayout;
  form->setRowWrapPolicy(QFormLayout::WrapLongRows);
  form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
  preset_ = new QComboBox(this);
  preset_->setObjectName("preset");
  for (const auto& p : qk::presets()) preset_->addItem(QString::fromStdString(p.name));
  form->addRow(tr("Preset"), preset_);
  kind_ = new QComboBox(this);
  kind_->setObjectName("dataKind");
  kind_->addItem("text");
  kind_->addItem("tokens");
  for (const auto& k : qk::task_kinds()) kind_->addItem(QString::fromStdString(k));
  form->addRow(tr("Data"), kind_);
  auto* pathRow = new QHBoxLayout;
  path_ = new QLineEdit(this);
  path_->setPlaceholderText(tr("text file (or drop one on the window)"));
  auto* browse = new QPushButton(tr("…"), this);
  browse->setMaximumWidth(30);
  pathRow->addWidget(path_);
  pathRow->addWidget(browse);
  form->addRow(tr("Corpus"), pathRow);
  tokenizer_ = new QComboBox(this);
  tokenizer_->setEditable(true);
  tokenizer_->addItems({"char", "gpt2"});
  tokenizer_->setToolTip(tr("char, gpt2 (files beside the corpus) or bpe:FILE"));
  form->addRow(tr("Tokenizer"), tokenizer_);
  layers_ = spin(this, 1, 96);
  heads_ = spin(this, 1, 128);
  dim_ = spin(this, 1, 8192);
  context_ = spin(this, 1, 8192);
  qk_ = spin(this, 0, 8192);
  qk_->setSpecialValueText(tr("d / heads"));
  dropout_ = dspin(this, 0, 0.95, 2, 0.05);
  form->addRow(tr("Layers"), layers_);
  form->addRow(tr("Heads"), heads_);
  form->addRow(tr("d (emb_dim)"), dim_);
  form->addRow(tr("Context"), context_);
  form->addRow(tr("qk_head_dim"), qk_);
  form->addRow(tr("Dropout"), dropout_);
  causal_ = new QCheckBox(tr("causal mask"), this);
  causal_->setObjectName("causal");
  causal_->setToolTip(tr("model.causal: off, every position attends to every other (no mask) — for the token-wise "
                         "enc-* tasks"));
  form->addRow(QString(), causal_);
  // The variants in a box of the panel's full width, two columns: the list grows downwards, never
  // wider than the panel, and every name stays whole (tests/ui: "the experiment panel…").
  auto* vbox = new QGroupBox(tr("Variants"), this);
  auto* vrow = new QGridLayout(vbox);
  vrow->setContentsMargins(6, 4, 6, 4);
  for (const auto& v : qk::all_variants()) {  // one checkbox per variant of the list
    auto* box = new QCheckBox(v.name, vbox);
    box->setObjectName(QString("variant_%1").arg(v.name));
    box->setToolTip(QString::fromUtf8(v.summary));
    const int i = static_cast<int>(variant_boxes_.size());
    variant_boxes_.push_back({v.variant, box});
    vrow->addWidget(box, i / 2, i % 2);
  }
  form->addRow(vbox);
  lr_ = dspin(this, 1e-6, 1e6, 6, 1e-4);
  wd_ = dspin(this, 0, 10, 3, 0.01);
  warmup_ = spin(this, 0, 1000000);
  cosine_ = new QCheckBox(tr("cosine decay"), this);
  clip_ = dspin(this, 0, 1000, 2, 0.5);
  clip_->setSpecialValueText(tr("off"));
  form->addRow(tr("AdamW lr"), lr_);
  form->addRow(tr("Weight decay"), wd_);
  form->addRow(tr("Warm-up steps"), warmup_);
  form->addRow(QString(), cosine_);
  form->addRow(tr("Grad clip"), clip_);
  steps_ = spin(this, 1, 100000000);
  epochs_ = spin(this, 0, 100000);
  epochs_->setSpecialValueText(tr("— (use steps)"));
  batch_ = spin(this, 1, 100000);
  eval_every_ = spin(this, 1, 1000000);
  seeds_ = spin(this, 1, 64);
  seed_ = spin(this, 0, 2147483647);
  twin_ = new QCheckBox(tr("twin start"), this);
  twin_->setToolTip(tr("merged starts from standard's S = W_Kᵀ·W_Q at step 0 (the same function)"));
  form->addRow(tr("Steps"), steps_);
  form->addRow(tr("Epochs"), epochs_);
  form->addRow(tr("Batch size"), batch_);
  form->addRow(tr("Eval every"), eval_every_);
  form->addRow(tr("Seeds"), seeds_);
  form->addRow(tr("Seed"), seed_);
  form->addRow(QString(), twin_);
  layout->addLayout(form);
  auto* box = new QGroupBox(tr("All settings"), this);
  auto* bl = new QVBoxLayout(box);
  table_ = new QTableWidget(box);
  table_->setObjectName("allSettings");
  table_->setColumnCount(2);
  table_->setHorizontalHeaderLabels({tr("key"), tr("value (JSON)")});
  table_->verticalHeader()->setVisible(false);
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->setMinimumHeight(120);
  bl->addWidget(table_);
  layout->addWidget(box, 1);
  estimates_ = new QLabel(this);
  estimates_->setObjectName("estimates");
  estimates_->setWordWrap(true);
  estimates_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  error_ = new QLabel(this);
  error_->setWordWrap(true);
  error_->setStyleSheet("color: #d62728");
  apply_ = new QPushButton(tr("Load experiment"), this);
  apply_->setObjectName("applyExperiment");
  layout->addWidget(estimates_);
  layout->addWidget(error_);
  layout->addWidget(apply_);

  connect(preset_, &QComboBox::textActivated, this, [this](const QString& name) {
    auto c = qk::preset_config(name.toStdString());
    if (c.data.kind == "text" && c.data.path.empty()) c.data.path = path_->text().toStdString();
    setConfig(c);
  });
  connect(browse, &QPushButton::clicked, this, [this] {
    QString f = QFileDialog::getOpenFileName(this, tr("Open a UTF-8 text file, or a prepared folder's train.bin or meta.json"));
    if (!f.isEmpty()) setCorpus(f);
  });
  connect(apply_, &QPushButton::clicked, this, [this] {
    try {
      auto c = config();
      Q_EMIT applyRequested(c);
    } catch (const std::exception& e) {
      error_->setText(QString::fromStdString(e.what()));
    }
  });
  // Any edit: refresh estimates and the table.
  auto changed = [this] {
    if (filling_) return;
    updateEstimates();
  };
  for (auto* s : {layers_, heads_, dim_, context_, qk_, steps_, epochs_, batch_, eval_every_, seeds_, seed_, warmup_})
    connect(s, qOverload<int>(&QSpinBox::valueChanged), this, changed);
  for (auto* s : {lr_, wd_, clip_, dropout_}) connect(s, qOverload<double>(&QDoubleSpinBox::valueChanged), this, changed);
  for (auto* b : {cosine_, twin_, causal_}) connect(b, &QCheckBox::toggled, this, changed);
  for (auto& [v, b] : variant_boxes_) connect(b, &QCheckBox::toggled, this, changed);
  // A token-wise task is an encoder's (no mask); every other kind predicts the next token, which an
  // encoder would see: picking a kind sets the checkbox to match, and says so.
  connect(kind_, &QComboBox::currentTextChanged, this, [this](const QString& kind) {
    if (filling_) return;
    const bool tokenwise = qk::is_tokenwise_task(kind.toStdString());
    if (causal_->isChecked() == tokenwise) {
      causal_->setChecked(!tokenwise);
      Q_EMIT notice(tokenwise ? tr("%1 is a token-wise task: the model is an encoder (causal mask off)").arg(kind)
                              : tr("%1 predicts the next token: causal mask on").arg(kind));
    }
  });
  connect(kind_, &QComboBox::currentTextChanged, this, changed);
  connect(tokenizer_, &QComboBox::currentTextChanged, this, changed);
  connect(path_, &QLineEdit::textChanged, this, changed);
  connect(table_, &QTableWidget::cellChanged, this, [this](int row, int) {
    if (filling_) return;
    try {
      auto c = config();
      qk::apply_override(c, table_->item(row, 0)->text().toStdString() + "=" + table_->item(row, 1)->text().toStdString());
      setConfig(c);
    } catch (const std::exception& e) {
      error_->setText(QString::fromStdString(e.what()));
    }
  });
  setConfig(qk::preset_config("default"));
}

QString ExperimentPanel::tokensFolderOf(const QString& path) {
  const QFileInfo fi(path);
  const QString dir = fi.isDir() ? fi.absoluteFilePath() : fi.absolutePath();
  if (!fi.isDir() && !QStringList{"train.bin", "val.bin", "meta.json"}.contains(fi.fileName())) return {};
  return QFileInfo(dir + "/train.bin").isFile() ? dir : QString();
}

void ExperimentPanel::setCorpus(const QString& picked) {
  const QString folder = tokensFolderOf(picked);
  const QString path = folder.isEmpty() ? picked : folder;
  auto c = base_;
  try {
    c = config();
  } catch (const std::exception& e) {
    Q_EMIT notice(tr("The panel's settings were not valid (%1); the corpus starts from the last applied experiment")
                      .arg(QString::fromStdString(e.what())));
  }
  if (!folder.isEmpty()) {  // a prepared folder: its tokenizer and vocabulary are the folder's
    if (!qk::is_language_kind(c.data.kind)) {
      c.model.context_length = std::max(c.model.context_length, 64);
      c.model.drop_rate = 0.1;
      c.train.batch_size = 16;
      c.train.steps = 1000;
      c.train.spectra_every = 0;
    }
    c.data.kind = "tokens";
    c.train.epochs = 0;  // random windows: an endless stream, measured in steps
    Q_EMIT notice(tr("A prepared tokens folder: windows of %1 tokens drawn at random positions, %2 steps "
                     "(change them in the panel and Apply)").arg(c.model.context_length).arg(c.train.steps));
  } else if (c.data.kind != "text") {  // a corpus turns the experiment into a character-level text run
    c.data.kind = "text";
    c.data.tokenizer = "char";
    c.model.context_length = std::max(c.model.context_length, 64);
    c.model.drop_rate = 0.1;
    c.train.batch_size = 16;
    c.train.steps = 1000;
    c.train.spectra_every = 0;
    Q_EMIT notice(tr("A text corpus makes this a character-level text run: tokenizer char, context %1, dropout 0.1, "
                     "batch 16, 1000 steps (change them in the panel and Apply)").arg(c.model.context_length));
  }
  c.data.path = path.toStdString();
  c.name = QFileInfo(path).fileName().toStdString();
  setConfig(c);
}

void ExperimentPanel::setConfig(const qk::ExperimentConfig& c) {
  filling_ = true;
  base_ = c;
  const int pi = preset_->findText(QString::fromStdString(c.name));
  if (pi >= 0) preset_->setCurrentIndex(pi);
  kind_->setCurrentText(QString::fromStdString(c.data.kind));
  path_->setText(QString::fromStdString(c.data.path));
  tokenizer_->setCurrentText(QString::fromStdString(c.data.tokenizer));
  layers_->setValue(c.model.n_layers);
  heads_->setValue(c.model.n_heads);
  dim_->setValue(c.model.emb_dim);
  context_->setValue(c.model.context_length);
  qk_->setValue(c.model.qk_head_dim);
  dropout_->setValue(c.model.drop_rate);
  causal_->setChecked(c.model.causal);
  for (auto& [v, b] : variant_boxes_) b->setChecked(std::count(c.variants.begin(), c.variants.end(), v) > 0);
  lr_->setValue(c.train.lr);
  wd_->setValue(c.train.weight_decay);
  warmup_->setValue(c.train.warmup_steps);
  cosine_->setChecked(c.train.cosine);
  clip_->setValue(c.train.grad_clip);
  steps_->setValue(c.train.steps);
  epochs_->setValue(c.train.epochs);
  batch_->setValue(c.train.batch_size);
  eval_every_->setValue(c.train.eval_every);
  seeds_->setValue(c.train.seeds);
  seed_->setValue(c.train.seed);
  twin_->setChecked(c.train.twin_start);
  filling_ = false;
  updateEstimates();
}

qk::ExperimentConfig ExperimentPanel::config() const {
  qk::ExperimentConfig c = base_;
  c.data.kind = kind_->currentText().toStdString();
  c.data.path = path_->text().toStdString();
  c.data.tokenizer = tokenizer_->currentText().toStdString();
  c.model.n_layers = layers_->value();
  c.model.n_heads = heads_->value();
  c.model.emb_dim = dim_->value();
  c.model.context_length = context_->value();
  c.model.qk_head_dim = qk_->value();
  c.model.drop_rate = dropout_->value();
  c.model.causal = causal_->isChecked();
  c.variants.clear();
  for (auto& [v, b] : variant_boxes_)
    if (b->isChecked()) c.variants.push_back(v);
  c.train.lr = lr_->value();
  c.train.weight_decay = wd_->value();
  c.train.warmup_steps = warmup_->value();
  c.train.cosine = cosine_->isChecked();
  c.train.grad_clip = clip_->value();
  c.train.steps = steps_->value();
  c.train.epochs = epochs_->value();
  c.train.batch_size = batch_->value();
  c.train.eval_every = eval_every_->value();
  c.train.seeds = seeds_->value();
  c.train.seed = seed_->value();
  c.train.twin_start = twin_->isChecked();
  qk::validate_config(c, "experiment");
  return c;
}

void ExperimentPanel::setLocked(bool locked) {
  for (auto* w : findChildren<QWidget*>())
    if (w != estimates_ && w != error_) w->setEnabled(!locked);
}

QString ExperimentPanel::estimateText() const { return estimates_->text(); }

void ExperimentPanel::updateEstimates() {
  qk::ExperimentConfig c;
  try {
    c = config();
    error_->clear();
    apply_->setEnabled(true);
  } catch (const std::exception& e) {
    error_->setText(QString::fromStdString(e.what()));
    estimates_->clear();
    return;
  }
  int64_t vocab = c.model.vocab_size;
  if (vocab == 0) {
    try {
      vocab = qk::data_vocab_size(c.data);
    } catch (const std::exception& e) {  // e.g. a tokens folder or bpe: file that cannot be read
      error_->setText(QString::fromStdString(e.what()));
      vocab = 0;
    }
  }
  QStringList lines;
  for (auto v : c.variants) {
    auto e = qk::estimate(c, v, vocab);
    lines << QString("<b>%1</b>: %2 params, %3/token (training), ≈ %4")
                 .arg(QString::fromStdString(qk::variant_name(v)), human(double(e.parameters), ""),
                      human(e.flops_per_token, "FLOP"), human(e.memory_bytes, "B"));
  }
  if (vocab == 0) lines << tr("(vocabulary from the corpus: counts exclude the embedding and head)");
  // Budget matching: how each later variant would get the first one's parameters or FLOPs
  // (qklab-cli train --match params|flops runs exactly these).
  for (size_t i = 1; vocab > 0 && i < c.variants.size(); ++i)
    for (auto by : {qk::MatchBy::Params, qk::MatchBy::Flops}) {
      try {
        const auto props = qk::propose_matches(c, c.variants[0], c.variants[i], by, vocab);
        if (props.empty()) continue;
        const auto& p = props.front();
        lines << tr("%1 at %2's %3: %4=%5 (%6%7%)")
                     .arg(QString::fromStdString(qk::variant_name(c.variants[i])),
                          QString::fromStdString(qk::variant_name(c.variants[0])),
                          by == qk::MatchBy::Params ? tr("params") : tr("FLOPs"),
                          QString::fromStdString(p.knob).section('.', 1), QString::number(p.value))
                     .arg(p.gap() >= 0 ? "+" : "")
                     .arg(100 * p.gap(), 0, 'f', 1);
      } catch (const std::exception&) {  // an invalid config: the error line already says why
      }
    }
  estimates_->setText(lines.join("<br>"));
  fillTable();
}

void ExperimentPanel::fillTable() {
  filling_ = true;
  qk::ExperimentConfig c = base_;
  try {
    c = config();
  } catch (const std::exception& e) {  // the table shows the last valid settings; the error stays in view
    error_->setText(QString::fromStdString(e.what()));
  }
  auto keys = qk::config_keys(c);
  table_->setRowCount(int(keys.size()));
  for (int i = 0; i < int(keys.size()); ++i) {
    auto* k = new QTableWidgetItem(QString::fromStdString(keys[i].first));
    k->setFlags(k->flags() & ~Qt::ItemIsEditable);
    table_->setItem(i, 0, k);
    table_->setItem(i, 1, new QTableWidgetItem(QString::fromStdString(keys[i].second)));
  }
  filling_ = false;
}

}  // namespace qkui
