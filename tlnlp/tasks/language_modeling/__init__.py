"""Language modelling, the LM stage of ULMFiT: unlabelled text, packed blocks, masking, (pseudo-)perplexity.

=========================  =====================================================================================
module                     what it holds
=========================  =====================================================================================
``data``                   ``task_texts``: a labelled task's texts, labels ignored (any other source:
                           :func:`tlnlp.data.load_text_data`)
``model``                  ``load_language_model``: masked LM for encoders, causal LM for decoders
``blocks``                 ``tokenize_for_lm``, ``lm_collator``, ``SparseMaskedLMLoss``
``scoring``                ``perplexity``, ``pseudo_perplexity``, ``language_model_score``
``task``                   :class:`LanguageModelingTask`, registered as ``"language-modeling"``
=========================  =====================================================================================

Importing this package loads the task only; the modules import ``torch``/``transformers`` and are imported from
where they are.
"""

from tlnlp.tasks.language_modeling.task import LanguageModelingTask

__all__ = ["LanguageModelingTask"]
